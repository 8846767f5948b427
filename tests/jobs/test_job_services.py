from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.jobs import services
from apps.jobs.models import Job, JobStatus


def make_job(owner, **fields) -> Job:
    return Job.objects.create(owner=owner, kind="jobs.count", queue="cpu", params={"n": 3, "delay": 0}, **fields)


def test_create_job_validates_kind_and_params(student):
    with pytest.raises(ValidationError, match="Unknown job kind"):
        services.create_job(student, "mine-bitcoin", {})
    with pytest.raises(ValidationError, match="n must be between 1 and 1000"):
        services.create_job(student, "jobs.count", {"n": 0})
    job = services.create_job(student, "jobs.count", {"n": "5"})
    assert job.params == {"n": 5, "delay": 0.2}
    assert job.status == JobStatus.QUEUED


def test_start_job_counts_attempts_and_skips_finished_jobs(student):
    job = make_job(student)
    started = services.start_job(job.pk)
    assert started.status == JobStatus.RUNNING
    assert started.attempts == 1
    # A redelivered task (worker lost) starts again as attempt 2 and says so.
    again = services.start_job(job.pk)
    assert again.attempts == 2
    assert "Retrying" in again.progress_message
    services.finish_job(again, {"ok": True})
    assert services.start_job(job.pk) is None


def test_start_job_gives_up_after_max_attempts(student, settings):
    settings.JOB_MAX_ATTEMPTS = 2
    job = make_job(student, attempts=2, status=JobStatus.RUNNING)
    assert services.start_job(job.pk) is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "Gave up after 2 attempts" in job.error


def test_run_job_records_failure_with_the_error(student):
    job = make_job(student)

    def explode(_job):
        raise RuntimeError("disk on fire")

    services.run_job(job.pk, explode)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "RuntimeError: disk on fire"


def test_cancel_stops_a_running_job_at_its_next_progress_report(student):
    job = make_job(student)
    running = services.start_job(job.pk)
    services.cancel_job(running)

    def body(job):
        services.report_progress(job, 0.5, "half")
        return "should not finish"

    services.run_job(job.pk, body)  # picks up as another attempt; cancel was requested before start
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_cancel_of_a_queued_job_is_immediate(student):
    job = services.cancel_job(make_job(student))
    assert job.status == JobStatus.CANCELLED


def test_sweeper_fails_running_jobs_without_heartbeat(student, settings):
    settings.JOB_STALE_AFTER_SECONDS = 60
    fresh = make_job(student, status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    stale = make_job(student, status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5))
    with time_machine.travel(timezone.now(), tick=False):
        assert services.sweep_stale_jobs() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == JobStatus.FAILED
    assert "stopped responding" in stale.error
    assert fresh.status == JobStatus.RUNNING


def test_queue_position_counts_jobs_ahead(student):
    first = make_job(student)
    second = make_job(student)
    assert services.queue_position(first) == 1
    assert services.queue_position(second) == 2
    services.start_job(first.pk)
    assert services.queue_position(second) == 2  # the running job is still ahead


def test_queue_wait_estimates_from_recent_jobs_of_the_queue(student, settings):
    settings.QUEUE_WORKERS = {"cpu": 2}
    waiting = [make_job(student) for _ in range(3)]
    assert services.queue_wait(waiting[0]).estimated_seconds is None  # nothing learned yet
    assert "Position in queue: 1" in str(services.queue_wait(waiting[0]))
    now = timezone.now()
    for seconds in (10, 30, 20):
        Job.objects.create(
            owner=student, kind="jobs.count", queue="cpu", status=JobStatus.SUCCEEDED,
            started_at=now - timedelta(seconds=seconds), finished_at=now,
        )  # fmt: skip
    first, _second, third = (services.queue_wait(job) for job in waiting)
    assert first.estimated_seconds == pytest.approx(20, abs=0.5)  # one round of the median job
    assert third.position == 3
    assert third.estimated_seconds == pytest.approx(40, abs=0.5)  # two workers: the third waits two rounds
    assert "about 40 s" in str(third)


def test_queue_wait_counts_a_running_job_by_its_kind_and_a_chain_by_its_link(researcher, settings):
    """A user's SAE training queued behind the default set's chain waits for the rest of the
    chain's link (LINK_SECONDS, registered as runs_at_most), not for the queue's median job."""
    from apps.lingualens.default_set import KIND, LINK_SECONDS

    settings.QUEUE_WORKERS = {"batch": 1}
    now = timezone.now()
    for seconds in (100, 140, 120):  # trainings done before: two minutes each
        Job.objects.create(
            owner=researcher, kind="lingualens.train", queue="batch", status=JobStatus.SUCCEEDED,
            started_at=now - timedelta(seconds=seconds), finished_at=now,
        )  # fmt: skip
    chain = Job.objects.create(
        owner=researcher, kind=KIND, queue="batch", status=JobStatus.RUNNING, started_at=now - timedelta(minutes=5)
    )
    training = Job.objects.create(owner=researcher, kind="lingualens.train", queue="batch")
    wait = services.queue_wait(training)
    assert wait.position == 2
    # The chain's kind has no history: a whole link, less the 5 minutes it has worked; then its own 2 minutes.
    assert wait.estimated_seconds == pytest.approx(LINK_SECONDS - 300 + 120, abs=2)
    # Links that finished teach the chain's kind its own time (still never more than a link).
    Job.objects.create(
        owner=researcher, kind=KIND, queue="batch", status=JobStatus.SUCCEEDED,
        started_at=now - timedelta(seconds=LINK_SECONDS + 30), finished_at=now,
    )  # fmt: skip
    assert services.queue_wait(training).estimated_seconds == pytest.approx(LINK_SECONDS - 300 + 120, abs=2)
    chain.started_at = now - timedelta(seconds=LINK_SECONDS + 60)  # overran its link: about to hand over
    chain.save()
    assert services.queue_wait(training).estimated_seconds == pytest.approx(120, abs=2)
