"""Tasks for the `cpu` queue: thin wrappers around app services."""

import logging
import os
import threading

from celery import shared_task
from celery.signals import worker_process_init

from apps.jobs import services as job_services


@shared_task(name="workers.cpu.count_to")
def count_to(job_id: int) -> None:
    job_services.run_job(job_id, job_services.count_to)


@shared_task(name="workers.cpu.table_run")
def table_run(job_id: int) -> None:
    from apps.tables.assistant import run_message_code

    job_services.run_job(job_id, run_message_code)


@shared_task(name="workers.cpu.sweep_stale_jobs")
def sweep_stale_jobs() -> int:
    return job_services.sweep_stale_jobs()


@shared_task(name="workers.cpu.kbqa_train")
def kbqa_train(job_id: int) -> None:
    from apps.kbqa.pipeline import train

    job_services.run_job(job_id, train)


@shared_task(name="workers.cpu.kbqa_ask")
def kbqa_ask(job_id: int) -> None:
    from apps.kbqa.pipeline import answer

    job_services.run_job(job_id, answer)


@shared_task(name="workers.cpu.kbqa_evaluate")
def kbqa_evaluate(job_id: int) -> None:
    from apps.kbqa.pipeline import evaluate

    job_services.run_job(job_id, evaluate)


@shared_task(name="workers.cpu.kbqa_import")
def kbqa_import(job_id: int) -> None:
    from apps.kbqa.pipeline import run_import

    job_services.run_job(job_id, run_import)


@worker_process_init.connect
def preload_kbqa(**_kwargs) -> None:
    """With ATRIUM_PRELOAD_KBQA=1 (the cpu worker of `make up`), load the MiniLM encoder and
    index every KB in the background, so the first question is not the one that waits."""
    if os.environ.get("ATRIUM_PRELOAD_KBQA") != "1":
        return
    threading.Thread(target=_warm_kbqa, name="kbqa-warm-up", daemon=True).start()


def _warm_kbqa() -> None:
    from django.db import connection

    from apps.inference.embeddings import get_encoder
    from apps.kbqa.models import KnowledgeBase
    from apps.kbqa.questions import load_ontology

    try:
        get_encoder()
        for kb in KnowledgeBase.objects.all():
            load_ontology(kb)
    except Exception:  # noqa: BLE001  (a warm-up must never stop the worker; questions load lazily)
        logging.getLogger(__name__).exception("KBQA warm-up failed")
    finally:
        connection.close()
