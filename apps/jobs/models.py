from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
# Ended without a result: the worker failed, or the user stopped it.
STOPPED_STATUSES = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


class Job(models.Model):
    """One long-running piece of work done by a Celery worker, as the UI sees it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=40)
    queue = models.CharField(max_length=16)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"]), models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def percent(self) -> int:
        return round(self.progress * 100)

    @property
    def kind_label(self) -> str:
        from apps.jobs.kinds import JOB_KINDS

        kind = JOB_KINDS.get(self.kind)
        return str(kind.label) if kind and kind.label else self.kind

    @property
    def progress_text(self) -> str:
        """The progress message in the active language (apps/jobs/progress_text.py)."""
        from apps.jobs.progress_text import localize

        return localize(self.progress_message)

    @property
    def group_name(self) -> str:
        return job_group(self.pk)


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


class JobBacked(models.Model):
    """A row whose content a job makes (a parser, an answer, an import, an SAE...).

    Whether that work is waiting, running, done or stopped is the job's status, read through
    these properties: a row never keeps a copy of it to reconcile by hand. A row's own status
    field, where it has one, holds only what the job cannot know (an SAE stopped early with a
    usable result, an import refused for its content)."""

    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        abstract = True

    @property
    def job_status(self) -> str | None:
        """The job's status; None for a row made without a job (or whose job was deleted)."""
        return self.job.status if self.job_id else None

    @property
    def job_active(self) -> bool:
        """Its job is queued or running."""
        return self.job_status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def job_stopped(self) -> bool:
        """Its job ended without a result (failed or cancelled)."""
        return self.job_status in STOPPED_STATUSES

    @property
    def job_error(self) -> str:
        return self.job.error if self.job_id else ""
