"""Celery tasks of LinguaLens: thin wrappers around its pipeline (discovered by config.celery;
queues in apps.py)."""

from celery import shared_task

from apps.jobs.services import run_job


@shared_task(name="lingualens.train")
def train(job_id: int) -> None:
    from apps.lingualens.pipeline import train_job

    run_job(job_id, train_job)


@shared_task(name="lingualens.score")
def score(job_id: int) -> None:
    from apps.lingualens.pipeline import score_job

    run_job(job_id, score_job)


@shared_task(name="lingualens.search")
def search(job_id: int) -> None:
    from apps.lingualens.pipeline import search_job

    run_job(job_id, search_job)


@shared_task(name="lingualens.steer")
def steer(job_id: int) -> None:
    from apps.lingualens.pipeline import run_steering

    run_job(job_id, run_steering)


@shared_task(name="lingualens.explain")
def explain(job_id: int) -> None:
    from apps.lingualens.pipeline import explain_job

    run_job(job_id, explain_job)


@shared_task(name="lingualens.default_set")
def default_set(job_id: int) -> None:
    from apps.lingualens.default_set import run_default_set

    run_job(job_id, run_default_set)
