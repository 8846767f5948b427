"""Job life cycle: create (web), start/progress/finish (worker), cancel, sweep.

Each change is saved first and published after commit, so a page that reloads
always shows at least what the WebSocket said."""

import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from apps.jobs.events import send_to_group
from apps.jobs.kinds import JOB_KINDS
from apps.jobs.models import Job, JobStatus, job_group
from apps.jobs.progress_text import message, template

logger = logging.getLogger(__name__)

RETRYING = template(gettext_noop("Retrying (attempt {attempt}) after the worker stopped."))


class JobCancelled(Exception):  # noqa: N818  (a signal, not an error)
    """Raised inside a task when its user asked to stop."""


class JobFailed(Exception):  # noqa: N818  (named like JobCancelled, its sibling)
    """Raised by a task whose work ended without a useful result (refused, crashed...),
    so the job is `failed` with a message and a machine-readable result (say its kind),
    not `succeeded` with an error hidden inside the result."""

    def __init__(self, message: str, result: dict | None = None) -> None:
        super().__init__(message)
        self.result = result


def clean_count_params(params: dict) -> dict:
    """Params of the demo job (`jobs.count`), which tests use to drive a real worker."""
    try:
        n = int(params.get("n", 20))
        delay = float(params.get("delay", 0.2))
    except (TypeError, ValueError):
        raise ValidationError("n must be a whole number and delay a number of seconds") from None
    if not 1 <= n <= 1000:
        raise ValidationError("n must be between 1 and 1000")
    if not 0 <= delay <= 5:
        raise ValidationError("delay must be between 0 and 5 seconds")
    return {"n": n, "delay": delay}


def publish_job(job: Job) -> None:
    transaction.on_commit(lambda: send_to_group(job_group(job.pk), {"type": "job.update", "job_id": job.pk}))


def publish_queue_positions(queue: str) -> None:
    """A job leaving the queue moves every waiting job up one place: tell their pages."""
    waiting = list(Job.objects.filter(queue=queue, status=JobStatus.QUEUED).values_list("pk", flat=True)[:200])
    for job_id in waiting:
        transaction.on_commit(
            lambda job_id=job_id: send_to_group(job_group(job_id), {"type": "job.update", "job_id": job_id})
        )


def create_job(owner, kind: str, params: dict | None = None) -> Job:
    """Validate, save, and enqueue after commit. `kind` is a registered kind (apps.jobs.kinds)."""
    from config.celery import app as celery_app

    if kind not in JOB_KINDS:
        raise ValidationError(f"Unknown job kind {kind!r}")
    spec = JOB_KINDS[kind]
    cleaned = spec.clean(params or {})
    with transaction.atomic():
        job = Job.objects.create(owner=owner, kind=kind, queue=spec.queue, params=cleaned)
        # The task has the kind's name; the router (apps.jobs.kinds.route_task) picks its queue.
        transaction.on_commit(lambda: celery_app.send_task(kind, args=[job.pk]))
    return job


def queue_position(job: Job) -> int | None:
    """1 = next to run. None once the job has left the queue."""
    if job.status != JobStatus.QUEUED:
        return None
    ahead = Job.objects.filter(queue=job.queue, created_at__lt=job.created_at)
    ahead = ahead.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).count()
    return ahead + 1


@dataclass(frozen=True)
class QueueWait:
    position: int  # 1 = next to run
    estimated_seconds: float | None  # None until the queue has finished a job to learn from

    def __str__(self) -> str:
        if self.estimated_seconds is None:
            return gettext("Position in queue: %(position)s") % {"position": self.position}
        return gettext("Position in queue: %(position)s · about %(wait)s") % {
            "position": self.position,
            "wait": _wait_words(self.estimated_seconds),
        }


def _wait_words(seconds: float) -> str:
    if seconds < 60:
        return gettext("%(n)d s") % {"n": max(1, round(seconds))}
    return gettext("%(n)d min") % {"n": round(seconds / 60)}


RECENT_FOR_ESTIMATE = 20


def _median(values: list[float]) -> float | None:
    return statistics.median_high(values) if values else None


def queue_wait(job: Job) -> QueueWait | None:
    """Where a queued job stands and about how long until it is done: the jobs ahead of it and
    itself, shared by the queue's worker processes, each taking the median time of recent jobs of
    its kind on the queue (of any kind where its own has none yet), less what a running one has
    already worked, and never more than its kind's `runs_at_most` (a whole link while its kind has
    no history)."""
    position = queue_position(job)
    if position is None:
        return None
    recent = (
        Job.objects.filter(queue=job.queue, status=JobStatus.SUCCEEDED, started_at__isnull=False)
        .exclude(finished_at=None)
        .order_by("-finished_at")
        .values_list("kind", "started_at", "finished_at")[:RECENT_FOR_ESTIMATE]
    )
    by_kind: dict[str, list[float]] = {}
    for kind, started, finished in recent:
        by_kind.setdefault(kind, []).append((finished - started).total_seconds())
    any_kind = _median([seconds for durations in by_kind.values() for seconds in durations])
    if any_kind is None:
        return QueueWait(position, None)
    ahead = Job.objects.filter(queue=job.queue, created_at__lt=job.created_at)
    ahead = ahead.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).order_by("created_at")
    now = timezone.now()
    workers = [0.0] * settings.QUEUE_WORKERS.get(job.queue, 1)  # when each worker is next free
    for other in [*ahead, job]:
        limit = JOB_KINDS[other.kind].runs_at_most if other.kind in JOB_KINDS else None
        seconds = _median(by_kind.get(other.kind, []))
        if seconds is None:
            seconds = limit or any_kind  # a job that works in links usually works a whole link
        elif limit is not None:
            seconds = min(seconds, limit)
        if other.status == JobStatus.RUNNING and other.started_at:
            seconds = max(seconds - (now - other.started_at).total_seconds(), 0.0)
        free = workers.index(min(workers))  # the jobs ahead leave in order, to the first free worker
        workers[free] += seconds
    return QueueWait(position, workers[free])


def start_job(job_id: int) -> Job | None:
    """Mark a job running for this attempt. Returns None when there is nothing to do:
    the job is gone, finished already (a duplicate delivery), or out of attempts."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None
        if job.cancel_requested:
            _finish(job, JobStatus.CANCELLED, error="Cancelled before it started.")
            return None
        job.attempts += 1
        if job.attempts > settings.JOB_MAX_ATTEMPTS:
            error = f"Gave up after {job.attempts - 1} attempts (the worker kept stopping)."
            _finish(job, JobStatus.FAILED, error=error)
            return None
        now = timezone.now()
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        if job.attempts > 1:
            job.progress_message = message(RETRYING, attempt=job.attempts)
        job.save()
        publish_job(job)
        publish_queue_positions(job.queue)
        return job


def report_progress(job: Job, fraction: float, message: str = "") -> None:
    """Save progress and a heartbeat; raise JobCancelled if the user asked to stop."""
    job.progress = max(0.0, min(1.0, fraction))
    job.progress_message = message[:200]
    job.heartbeat_at = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        progress=job.progress, progress_message=job.progress_message, heartbeat_at=job.heartbeat_at
    )
    publish_job(job)
    if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
        raise JobCancelled


def _finish(job: Job, status: str, result: Any = None, error: str = "") -> None:
    job.status = status
    job.result = result
    job.error = error[:5000]
    job.finished_at = timezone.now()
    if status == JobStatus.SUCCEEDED:
        job.progress = 1.0
    job.save()
    publish_job(job)
    publish_queue_positions(job.queue)


def finish_job(job: Job, result: Any) -> None:
    _finish(job, JobStatus.SUCCEEDED, result=result)


def fail_job(job: Job, error: str) -> None:
    _finish(job, JobStatus.FAILED, error=error)


def cancel_job(job: Job) -> Job:
    """Queued jobs stop at once; running ones at their next progress report."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        job.cancel_requested = True
        job.save(update_fields=["cancel_requested"])
        if job.status == JobStatus.QUEUED:
            _finish(job, JobStatus.CANCELLED, error="Cancelled before it started.")
        else:
            publish_job(job)
    return job


def run_job(job_id: int, body: Callable[[Job], Any]) -> None:
    """What every Celery task does around its real work."""
    job = start_job(job_id)
    if job is None:
        return
    try:
        result = body(job)
    except JobCancelled:
        _finish(job, JobStatus.CANCELLED, error="Cancelled by the user.")
    except JobFailed as exc:
        _finish(job, JobStatus.FAILED, result=exc.result, error=str(exc))
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        fail_job(job, f"{type(exc).__name__}: {exc}")
    else:
        finish_job(job, result)


def sweep_stale_jobs(now=None) -> int:
    """Fail running jobs whose worker stopped sending heartbeats, so none stays
    'running' forever."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    stale = list(Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff))
    for job in stale:
        fail_job(job, "The worker stopped responding; the job was stopped. Try again.")
    return len(stale)


def count_to(job: Job) -> dict:
    """The demo job: count to n, reporting progress at each step."""
    import time

    n, delay = job.params["n"], job.params["delay"]
    for i in range(1, n + 1):
        time.sleep(delay)
        report_progress(job, i / n, f"Counted {i} of {n}")
    return {"counted": n}
