from typing import Any

from ninja import Router, Schema, Status
from ninja.errors import HttpError

from apps.accounts.api_area import area_auth
from apps.inference import services
from apps.inference.models import Generation
from apps.inference.registry import all_models

router = Router(tags=["inference"], auth=area_auth("playground"))


class GenerateIn(Schema):
    model: str
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    params: dict[str, Any] = {}


class GenerationOut(Schema):
    job_id: int
    status: str
    model: str
    output: str
    error: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    trimmed_messages: int
    tokens_per_second: float | None
    time_to_first_token_ms: float | None
    stream_url: str


class ModelOut(Schema):
    name: str
    backend: str
    context_length: int
    languages: list[str]
    chat: bool


def generation_out(generation: Generation) -> dict:
    job = generation.job
    return {
        "job_id": job.pk,
        "status": job.status,
        "model": generation.model_name,
        "output": generation.output,
        "error": job.error,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "finish_reason": generation.finish_reason,
        "trimmed_messages": generation.trimmed_messages,
        "tokens_per_second": generation.tokens_per_second,
        "time_to_first_token_ms": generation.time_to_first_token_ms,
        "stream_url": f"/ws/generations/{job.pk}/?format=json",
    }


@router.get("/models", response=list[ModelOut])
def list_models(request):
    return [
        {
            "name": s.name,
            "backend": s.backend,
            "context_length": s.context_length,
            "languages": list(s.languages),
            "chat": s.chat,
        }
        for s in all_models().values()
    ]


@router.post("/generate", response={201: GenerationOut})
def generate(request, payload: GenerateIn):
    """Queue a generation. Stream it over the WebSocket at stream_url, or poll /api/generations/{job_id}."""
    # ModelNotFound is a 404, InvalidParams and PromptTooLong 422 (config/api.py maps them).
    job = services.request_generation(
        request.auth, payload.model, messages=payload.messages, prompt=payload.prompt, params=payload.params
    )
    return Status(201, generation_out(job.generation))


@router.get("/generations/{int:job_id}", response=GenerationOut)
def get_generation(request, job_id: int):
    generation = services.visible_generation(request.auth, job_id)
    if generation is None:
        raise HttpError(404, "No such generation")
    return generation_out(generation)
