"""Model backends behind one interface (see base.Backend), and a per-process cache.

This package does not import Django: workers, tests and scripts can use it alone."""

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
    StopCheck,
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
    "StopCheck",
    "ensure_converted",
    "get_backend",
    "loaded_models",
]

_backends: dict[tuple[str, str], Backend] = {}
_key_locks: dict[tuple[str, str], threading.Lock] = {}
_registry_lock = threading.Lock()


def _create(spec: ModelSpec, models_dir: Path, device: str, threads: int | None) -> Backend:
    if spec.backend == "transformers":
        from apps.inference.backends.transformers_backend import TransformersBackend

        return TransformersBackend(spec, models_dir, device, threads)
    if spec.backend == "openai":
        from apps.inference.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(spec)
    # vLLM is reached through its OpenAI-compatible server (backend "openai"), not in process.
    raise ModelNotFound(f"Unknown backend {spec.backend!r} for model {spec.name}")


def get_backend(spec: ModelSpec, models_dir: Path, device: str = "cpu", threads: int | None = None) -> Backend:
    """The backend for `spec` in this process, created (and its model loaded) once.
    `threads`: torch's CPU threads for the process, see TransformersBackend.

    Thread-safe: two threads asking for the same model wait for one load; a thread
    asking for another model (or one already loaded) is not held up by a slow load."""
    key = (spec.name, device)
    with _registry_lock:
        if key in _backends:
            return _backends[key]
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        if key not in _backends:  # the thread that waited finds it loaded by the first one
            backend = _create(spec, models_dir, device, threads)
            with _registry_lock:
                _backends[key] = backend
        return _backends[key]


def loaded_models() -> list[tuple[str, str]]:
    """(model name, device) of every backend this process has created."""
    with _registry_lock:
        return sorted(_backends)
