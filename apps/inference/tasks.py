"""Celery tasks of the inference app (discovered by config.celery; queues in apps.py), and the
model preloading of the worker processes that run them.

Each worker process loads a model once (apps.inference.services caches it) and keeps it."""

import contextlib
import logging
import os

from celery import shared_task
from celery.signals import worker_process_init, worker_process_shutdown

from apps.jobs.services import run_job


@shared_task(name="inference.generate")
def generate(job_id: int) -> None:
    from apps.inference.services import run_generation

    run_job(job_id, run_generation)


@worker_process_init.connect
def preload_models(**_kwargs) -> None:
    """With ATRIUM_PRELOAD_MODELS=name,name the first request does not wait for loading."""
    names = [name.strip() for name in os.environ.get("ATRIUM_PRELOAD_MODELS", "").split(",") if name.strip()]
    if not names:
        return
    from apps.inference.registry import get_model
    from apps.inference.services import load_backend

    for name in names:
        try:
            load_backend(get_model(name))
        except Exception:  # noqa: BLE001  (a missing model must not stop the worker; the job will say why)
            logging.getLogger(__name__).exception("could not preload model %s", name)


@worker_process_shutdown.connect
def forget_models(**_kwargs) -> None:
    from apps.inference.services import forget_loaded_models

    with contextlib.suppress(Exception):  # best effort while the process exits
        forget_loaded_models()
