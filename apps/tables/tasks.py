"""Celery tasks of Tables (discovered by config.celery; queues in apps.py)."""

from celery import shared_task

from apps.jobs.services import run_job


@shared_task(name="tables.ask")
def ask(job_id: int) -> None:
    from apps.tables.assistant import answer

    run_job(job_id, answer)


@shared_task(name="tables.run")
def run(job_id: int) -> None:
    from apps.tables.assistant import run_message_code

    run_job(job_id, run_message_code)
