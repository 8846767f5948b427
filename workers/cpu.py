"""Tasks for the `cpu` queue: thin wrappers around app services."""

from celery import shared_task

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
