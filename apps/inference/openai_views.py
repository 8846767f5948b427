"""Atrium's registered models behind the OpenAI HTTP API (/v1), so notebooks and the
`openai` client can use them. Requests go through the same job queue and workers
as the playground; streams are server-sent events fed from the job's group."""

import asyncio
import json
import time
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from apps.accounts import throttle
from apps.accounts.permissions import can_access_area
from apps.inference import live_text, services
from apps.inference.backends import InferenceError, ModelNotFound
from apps.inference.models import Generation
from apps.inference.registry import all_models
from apps.jobs.models import Job, JobStatus, job_group
from apps.jobs.services import cancel_job

PARAM_KEYS = ("temperature", "top_p", "max_tokens", "stop", "seed")
STREAM_IDLE_TIMEOUT = 120.0


def openai_error(status: int, message: str, kind: str = "invalid_request_error") -> JsonResponse:
    return JsonResponse({"error": {"message": message, "type": kind, "code": status}}, status=status)


async def authorize(request: HttpRequest):
    """(user, None) for a valid token whose role may use the models, else (None, the OpenAI-style
    error): 401 without a valid token, 403 for a role that may not (the same split as /api/)."""
    header = request.headers.get("Authorization", "")
    user = None
    if header.lower().startswith("bearer "):
        try:  # bad tokens count against the caller's address, as on /api/
            user = await sync_to_async(throttle.user_for_token_from)(
                header[7:].strip(), throttle.request_address(request.META)
            )
        except throttle.TokenThrottledError as exc:
            return None, openai_error(429, f"Too many invalid tokens: try again in {exc.retry_after} s", "rate_limit")
    if user is None:
        return None, openai_error(401, "A valid API token is required", "authentication")
    if not can_access_area(user, "playground"):
        return None, openai_error(403, "Your role cannot use the models: researchers and admins can", "permission")
    return user, None


@csrf_exempt  # token auth only: no cookies, so no cross-site request to forge
@require_GET
async def list_models(request: HttpRequest):
    _user, refusal = await authorize(request)
    if refusal is not None:
        return refusal
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "atrium"} for name in all_models()]
    return JsonResponse({"object": "list", "data": data})


def _final_state(job_id: int) -> tuple[Job, Generation]:
    job = Job.objects.get(pk=job_id)
    return job, Generation.objects.get(job=job)


async def _stream_generation(job_id: int) -> AsyncIterator[tuple[str, str | None]]:
    """Yields (text, None) for each new piece, then ("", finish_reason) once done.
    Raises InferenceError if the job failed."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = job_group(job_id)
    await layer.group_add(group, channel)
    try:
        # Joined, then read: see live_text for why nothing is lost or doubled.
        sent = 0
        job, generation = await sync_to_async(_final_state)(job_id)
        text = generation.output if job.is_finished else await sync_to_async(live_text.read)(job_id)
        if text:
            sent = len(text)
            yield text, None
        while not job.is_finished:
            message = await asyncio.wait_for(layer.receive(channel), timeout=STREAM_IDLE_TIMEOUT)
            if message["type"] == "generation.delta":
                piece = live_text.trim_delta(sent, message["start"], message["text"])
                if piece:
                    sent += len(piece)
                    yield piece, None
            elif message["type"] == "job.update":
                job, generation = await sync_to_async(_final_state)(job_id)
        if job.status != JobStatus.SUCCEEDED:
            raise InferenceError(job.error or f"generation {job.status}")
        # Text saved at the end that was not streamed (cannot normally happen; cheap to guard).
        if len(generation.output) > sent:
            yield generation.output[sent:], None
        yield "", generation.finish_reason or "stop"
    finally:
        await layer.group_discard(group, channel)


def _chunk(completion_id: str, model: str, created: int, kind: str, text: str, finish: str | None) -> str:
    if kind == "chat":
        choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish}
        obj = "text_completion"
    return (
        "data: "
        + json.dumps({"id": completion_id, "object": obj, "created": created, "model": model, "choices": [choice]})
        + "\n\n"
    )


async def _handle(request: HttpRequest, kind: str):
    user, refusal = await authorize(request)
    if refusal is not None:
        return refusal
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return openai_error(400, "The request body is not valid JSON")
    if not isinstance(body, dict) or "model" not in body:
        return openai_error(400, "model is required")
    if body.get("n", 1) != 1:
        return openai_error(400, "n must be 1")
    params = {key: body[key] for key in PARAM_KEYS if key in body}
    request_fields = {"messages": body.get("messages")} if kind == "chat" else {"prompt": body.get("prompt")}
    try:
        job = await sync_to_async(services.request_generation)(user, body["model"], params=params, **request_fields)
    except ModelNotFound as exc:
        return openai_error(404, str(exc), "model_not_found")
    except InferenceError as exc:
        return openai_error(400, str(exc))

    completion_id = f"atrium-{job.pk}"
    created = int(time.time())
    model = body["model"]

    if body.get("stream"):

        async def events() -> AsyncIterator[str]:
            finished = False
            try:
                async for text, finish in _stream_generation(job.pk):
                    if finish is not None:
                        finished = True
                    yield _chunk(completion_id, model, created, kind, text, finish)
                yield "data: [DONE]\n\n"
            except (InferenceError, TimeoutError) as exc:
                finished = True
                yield "data: " + json.dumps({"error": {"message": str(exc), "type": "server_error"}}) + "\n\n"
            finally:
                if not finished:  # the client went away: stop the work it asked for
                    await sync_to_async(cancel_job)(job)

        response = StreamingHttpResponse(events(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response

    parts = []
    finish_reason = "stop"
    try:
        async for text, finish in _stream_generation(job.pk):
            parts.append(text)
            finish_reason = finish or finish_reason
    except (InferenceError, TimeoutError) as exc:
        return openai_error(500, str(exc), "server_error")
    _job, generation = await sync_to_async(_final_state)(job.pk)
    text = "".join(parts)
    if kind == "chat":
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}
        obj = "text_completion"
    usage = {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
    }
    return JsonResponse(
        {"id": completion_id, "object": obj, "created": created, "model": model, "choices": [choice], "usage": usage}
    )


@csrf_exempt
@require_POST
async def chat_completions(request: HttpRequest):
    return await _handle(request, "chat")


@csrf_exempt
@require_POST
async def completions(request: HttpRequest):
    return await _handle(request, "completion")
