"""Celery tasks of the job platform (discovered by config.celery; queues in apps.py)."""

from celery import shared_task

from apps.jobs import services


@shared_task(name="jobs.count")
def count(job_id: int) -> None:
    services.run_job(job_id, services.count_to)


@shared_task(name="jobs.sweep_stale")
def sweep_stale() -> int:
    return services.sweep_stale_jobs()
