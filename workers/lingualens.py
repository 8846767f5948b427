"""Celery tasks for LinguaLens: thin wrappers that call apps.lingualens services."""

from celery import shared_task

from apps.jobs.services import run_job


@shared_task(name="workers.lingualens.train")
def train(job_id: int) -> None:
    from apps.lingualens.pipeline import train_job

    run_job(job_id, train_job)


@shared_task(name="workers.lingualens.score")
def score(job_id: int) -> None:
    from apps.lingualens.pipeline import score_job

    run_job(job_id, score_job)


@shared_task(name="workers.lingualens.search")
def search(job_id: int) -> None:
    from apps.lingualens.pipeline import search_job

    run_job(job_id, search_job)


@shared_task(name="workers.lingualens.steer")
def steer(job_id: int) -> None:
    from apps.lingualens.pipeline import run_steering

    run_job(job_id, run_steering)


@shared_task(name="workers.lingualens.explain")
def explain(job_id: int) -> None:
    from apps.lingualens.pipeline import explain_job

    run_job(job_id, explain_job)
