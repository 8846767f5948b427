"""WebSocket that pushes a job's status to its page as htmx out-of-band fragments."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from apps.accounts.permissions import can_access_area, can_view_owned
from apps.jobs.models import Job, job_group
from apps.jobs.services import queue_wait

CLOSE_FORBIDDEN = 4403


def render_job_status(job: Job) -> str:
    return render_to_string("jobs/job_detail.html#job-status", {"job": job, "oob": True, "wait": queue_wait(job)})


class JobConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        user = self.scope.get("user")
        job = await database_sync_to_async(Job.objects.filter(pk=self.job_id).first)()
        if job is None or not can_access_area(user, "jobs") or not can_view_owned(user, job.owner_id):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = job_group(self.job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # Send the current state at once: anything published before we joined is not lost.
        await self.send(text_data=await database_sync_to_async(render_job_status)(job))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_update(self, event: dict) -> None:
        job = await database_sync_to_async(Job.objects.filter(pk=self.job_id).first)()
        if job is not None:
            await self.send(text_data=await database_sync_to_async(render_job_status)(job))
