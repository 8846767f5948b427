"""Celery tasks of PBL studio: thin wrappers around its services (discovered by config.celery;
queues in apps.py)."""

from celery import shared_task

from apps.jobs.services import run_job


@shared_task(name="pbl.agent_reply")
def agent_reply(job_id: int) -> None:
    """A collaborator agent answers."""
    from apps.pbl.agents import answer, fail_reply

    def body(job):
        try:
            return answer(job)
        except Exception as exc:
            fail_reply(job, f"{type(exc).__name__}: {exc}")
            raise

    run_job(job_id, body)


@shared_task(name="pbl.judge")
def judge(job_id: int) -> None:
    """The milestone judge evaluates a submission."""
    from apps.pbl.judge import evaluate

    run_job(job_id, evaluate)


@shared_task(name="pbl.orchestrate")
def orchestrate() -> int:
    """The orchestrator loop (Celery beat)."""
    from apps.pbl.orchestrator import tick

    return tick()


@shared_task(name="pbl.orchestrate_learner")
def orchestrate_learner(run_id: int, user_id: int) -> bool:
    """The orchestrator's event trigger for one learner."""
    from apps.pbl.orchestrator import orchestrate_by_ids

    return orchestrate_by_ids(run_id, user_id) is not None
