"""WebSocket for a steering run: both generations (without and with the intervention) as
they are produced, plus the job's status, as htmx out-of-band fragments."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils.html import escape

from apps.accounts.permissions import can_access_area, can_view_owned
from apps.jobs.consumers import CLOSE_FORBIDDEN, render_job_status
from apps.jobs.models import Job, job_group
from apps.lingualens.models import SteeringRun


def visible_run(user, job_id: int) -> SteeringRun | None:
    run = SteeringRun.objects.select_related("job").filter(job_id=job_id).first()
    if run is None or not can_access_area(user, "lingualens") or not can_view_owned(user, run.owner_id):
        return None
    return run


class SteeringConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        run = await database_sync_to_async(visible_run)(self.scope.get("user"), self.job_id)
        if run is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = job_group(self.job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # What was saved so far, then the deltas (a delta sent in between may repeat; the saved
        # text is at most a second old, and the page shows the final text on reload).
        await self.send(
            text_data=self.side_html("plain", run.output_plain, "innerHTML")
            + self.side_html("steered", run.output_steered, "innerHTML")
            + await database_sync_to_async(render_job_status)(run.job)
        )

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    def side_html(self, side: str, text: str, swap: str) -> str:
        return f'<div id="steer-{self.job_id}-{side}" hx-swap-oob="{swap}"><span>{escape(text)}</span></div>'

    async def steer_delta(self, event: dict) -> None:
        side = "steered" if event.get("side") == "steered" else "plain"
        if event.get("reset"):
            await self.send(text_data=self.side_html(side, "", "innerHTML"))
        elif event.get("text"):
            await self.send(text_data=self.side_html(side, event["text"], "beforeend"))

    async def job_update(self, event: dict) -> None:
        job = await database_sync_to_async(Job.objects.filter(pk=self.job_id).first)()
        if job is not None:
            await self.send(text_data=await database_sync_to_async(render_job_status)(job))
