"""Celery tasks of KBQA: thin wrappers around apps.kbqa.services (discovered by config.celery;
queues in apps.py), and the warm-up of the cpu workers that answer questions."""

import logging
import os
import threading

from celery import shared_task
from celery.signals import worker_process_init

from apps.jobs.services import run_job


@shared_task(name="kbqa.train")
def train(job_id: int) -> None:
    from apps.kbqa.services import train

    run_job(job_id, train)


@shared_task(name="kbqa.ask")
def ask(job_id: int) -> None:
    from apps.kbqa.services import answer

    run_job(job_id, answer)


@shared_task(name="kbqa.draft")
def draft(job_id: int) -> None:
    from apps.kbqa.services import draft

    run_job(job_id, draft)


@shared_task(name="kbqa.evaluate")
def evaluate(job_id: int) -> None:
    from apps.kbqa.services import evaluate

    run_job(job_id, evaluate)


@shared_task(name="kbqa.import")
def import_kb(job_id: int) -> None:
    from apps.kbqa.services import run_import

    run_job(job_id, run_import)


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
    from apps.kbqa.ontology import load_ontology

    try:
        get_encoder()
        for kb in KnowledgeBase.objects.all():
            load_ontology(kb)
    except Exception:  # noqa: BLE001  (a warm-up must never stop the worker; questions load lazily)
        logging.getLogger(__name__).exception("KBQA warm-up failed")
    finally:
        connection.close()
