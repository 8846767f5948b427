"""WebSocket for one generation: the text so far, then new text as it is produced.

Browsers get htmx out-of-band fragments (escaped text); scripts that connect with
?format=json get JSON messages. Both ask the same permission helper."""

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.utils.html import escape

from apps.inference import live_text
from apps.inference.models import Generation
from apps.inference.services import visible_generation
from apps.jobs.consumers import CLOSE_FORBIDDEN
from apps.jobs.models import Job, job_group
from apps.jobs.services import queue_position, queue_wait


def generation_state(job_id: int) -> tuple[Job, Generation, str]:
    job = Job.objects.get(pk=job_id)
    generation = Generation.objects.get(job=job)
    # Finished generations have their text in Postgres; running ones in Redis.
    text = generation.output if job.is_finished else live_text.read(job_id)
    return job, generation, text


def render_status(job: Job, generation: Generation) -> str:
    return render_to_string(
        "inference/playground.html#generation-status",
        {"job": job, "generation": generation, "oob": True, "wait": queue_wait(job)},
    )


def status_payload(job: Job, generation: Generation) -> dict:
    return {
        "type": "status",
        "status": job.status,
        "error": job.error,
        "finish_reason": generation.finish_reason,
        "completion_tokens": generation.completion_tokens,
        "tokens_per_second": generation.tokens_per_second,
        "time_to_first_token_ms": generation.time_to_first_token_ms,
        "queue_position": queue_position(job),
    }


class GenerationConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.as_json = query.get("format") == ["json"]
        user = self.scope.get("user")
        generation = await database_sync_to_async(visible_generation)(user, self.job_id)
        if generation is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = job_group(self.job_id)
        # Join first, then read: nothing published in between is lost (see live_text).
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        job, generation, text = await database_sync_to_async(generation_state)(self.job_id)
        self.sent_chars = len(text)
        if self.as_json:
            await self.send(text_data=json.dumps({"type": "snapshot", "text": text}))
            await self.send(text_data=json.dumps(await database_sync_to_async(status_payload)(job, generation)))
        else:
            await self.send(text_data=self.output_html(text, "innerHTML") + await self.status_html(job, generation))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    def output_html(self, text: str, swap: str) -> str:
        return f'<div id="gen-{self.job_id}-output" hx-swap-oob="{swap}"><span>{escape(text)}</span></div>'

    async def status_html(self, job: Job, generation: Generation) -> str:
        return await database_sync_to_async(render_status)(job, generation)

    async def generation_delta(self, event: dict) -> None:
        text = live_text.trim_delta(self.sent_chars, event["start"], event["text"])
        if not text:
            return
        self.sent_chars += len(text)
        if self.as_json:
            await self.send(text_data=json.dumps({"type": "delta", "text": text}))
        else:
            await self.send(text_data=self.output_html(text, "beforeend"))

    async def generation_reset(self, event: dict) -> None:
        # A retried generation (its worker was lost) starts its text again.
        self.sent_chars = 0
        if self.as_json:
            await self.send(text_data=json.dumps({"type": "reset"}))
        else:
            await self.send(text_data=self.output_html("", "innerHTML"))

    async def job_update(self, event: dict) -> None:
        job, generation, _text = await database_sync_to_async(generation_state)(self.job_id)
        if self.as_json:
            await self.send(text_data=json.dumps(await database_sync_to_async(status_payload)(job, generation)))
        else:
            await self.send(text_data=await self.status_html(job, generation))
