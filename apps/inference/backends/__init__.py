"""Model backends behind one interface (see base.Backend), and a per-process cache."""

import threading
from pathlib import Path

from apps.inference.backends.base import (
    Backend,
    GenerationParams,
    InferenceError,
    InvalidParams,
    ModelFilesMissing,
    ModelNotFound,
    ModelSpec,
    PromptTooLong,
)
from apps.inference.backends.transformers_backend import CONVERTED_MARKER, ensure_converted

__all__ = [
    "CONVERTED_MARKER",
    "Backend",
    "GenerationParams",
    "InferenceError",
    "InvalidParams",
    "ModelFilesMissing",
    "ModelNotFound",
    "ModelSpec",
    "PromptTooLong",
    "ensure_converted",
    "get_backend",
]

_backends: dict[tuple[str, str], Backend] = {}
_lock = threading.Lock()


def get_backend(spec: ModelSpec, models_dir: Path, device: str = "cpu") -> Backend:
    """The backend for `spec` in this process, created (and its model loaded) once."""
    key = (spec.name, device)
    with _lock:
        if key not in _backends:
            if spec.backend == "transformers":
                from apps.inference.backends.transformers_backend import TransformersBackend

                _backends[key] = TransformersBackend(spec, models_dir, device)
            elif spec.backend == "openai":
                from apps.inference.backends.openai_backend import OpenAIBackend

                _backends[key] = OpenAIBackend(spec)
            elif spec.backend == "vllm":
                from apps.inference.backends.vllm_backend import VLLMBackend

                _backends[key] = VLLMBackend(spec)
            else:
                raise ModelNotFound(f"Unknown backend {spec.backend!r} for model {spec.name}")
        return _backends[key]
