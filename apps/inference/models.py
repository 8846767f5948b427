from django.db import models

from apps.jobs.models import Job


class Generation(models.Model):
    """One generation request and its output. The job row carries status and progress;
    this row carries the text, so a reload or a dropped socket loses nothing."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="generation")
    model_name = models.CharField(max_length=120)
    messages = models.JSONField(null=True, blank=True)  # chat requests
    prompt = models.TextField(blank=True)  # completion requests
    params = models.JSONField(default=dict)
    output = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    time_to_first_token_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)  # stop, length, cancelled, error
    # Earlier messages left out so the conversation fits the model's context (shown to the user).
    trimmed_messages = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"generation for job {self.job_id} ({self.model_name})"

    @property
    def is_chat(self) -> bool:
        return self.messages is not None
