"""Celery tasks for PBL studio: thin wrappers that call apps.pbl services."""

from celery import shared_task

from apps.jobs.services import run_job


@shared_task(name="workers.pbl.agent_reply")
def agent_reply(job_id: int) -> None:
    """A collaborator agent answers (gpu queue)."""
    from apps.pbl.agents import answer, fail_reply

    def body(job):
        try:
            return answer(job)
        except Exception as exc:
            fail_reply(job, f"{type(exc).__name__}: {exc}")
            raise

    run_job(job_id, body)


@shared_task(name="workers.pbl.judge_submission")
def judge_submission(job_id: int) -> None:
    """The milestone judge evaluates a submission (gpu queue)."""
    from apps.pbl.judge import evaluate

    run_job(job_id, evaluate)


@shared_task(name="workers.pbl.orchestrate")
def orchestrate() -> int:
    """The orchestrator loop (cpu queue, Celery beat)."""
    from apps.pbl.orchestrator import tick

    return tick()


@shared_task(name="workers.pbl.orchestrate_learner")
def orchestrate_learner(run_id: int, user_id: int) -> bool:
    """The orchestrator's event trigger for one learner (cpu queue)."""
    from apps.pbl.orchestrator import orchestrate_by_ids

    return orchestrate_by_ids(run_id, user_id) is not None
