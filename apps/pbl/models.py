"""PBL studio data. A Project is authored once (its stages, agents and exams live in
validated JSON, see apps.pbl.schema); a ProjectRun plays it with one cohort. Everything a
learner, agent or the orchestrator does is appended to Event, the one log that the
orchestrator and the dashboard both read."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.jobs.models import Job


class Project(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pbl_projects")
    title = models.CharField(max_length=200)
    driving_question = models.TextField()
    # The full authored project (goals, stages, resources, agents, exams), validated by schema.validate_project.
    spec = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def stages(self) -> list[dict]:
        return self.spec["stages"]

    @property
    def agents(self) -> list[dict]:
        return self.spec["agents"]

    def stage(self, index: int) -> dict | None:
        return self.stages[index] if 0 <= index < len(self.stages) else None

    def stage_by_key(self, key: str) -> dict | None:
        return next((stage for stage in self.stages if stage["key"] == key), None)

    def agent(self, name: str) -> dict | None:
        return next((agent for agent in self.agents if agent["name"].lower() == name.lower()), None)


class RunStatus(models.TextChoices):
    DRAFT = "draft", _("Not started")
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class ProjectRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    cohort = models.ForeignKey("accounts.Cohort", on_delete=models.CASCADE, related_name="pbl_runs")
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.DRAFT)
    # The orchestrator's thresholds for this run (defaults in orchestrator.DEFAULT_THRESHOLDS), tuned by the teacher.
    thresholds = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.project.title} · {self.cohort.name}"

    @property
    def is_open(self) -> bool:
        return self.status == RunStatus.OPEN


class Team(models.Model):
    MAX_MEMBERS = 4

    run = models.ForeignKey(ProjectRun, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=80)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="pbl_teams", blank=True)
    current_stage = models.PositiveIntegerField(default=0)
    stage_started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="pbl_team_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def stage(self) -> dict | None:
        return self.run.project.stage(self.current_stage)


class Document(models.Model):
    """The team's deliverable for one stage. Text lives in versions; `version` is the newest number."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="documents")
    stage_key = models.CharField(max_length=40)
    version = models.PositiveIntegerField(default=0)
    text = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "stage_key"], name="pbl_document_per_stage")]

    def __str__(self) -> str:
        return f"{self.team} / {self.stage_key} v{self.version}"


class DocumentVersion(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    # Always a learner: agents never write the deliverable.
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    base_number = models.PositiveIntegerField()
    merged = models.BooleanField(default=False)  # a concurrent edit was merged in
    conflict = models.BooleanField(default=False)  # both texts kept with markers; a learner must resolve
    chars_added = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["document", "number"], name="pbl_version_unique")]

    def __str__(self) -> str:
        return f"v{self.number} by {self.author_id}"


class TaskStatus(models.TextChoices):
    TODO = "todo", _("To do")
    DOING = "doing", _("Doing")
    DONE = "done", _("Done")


class Task(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=TaskStatus.choices, default=TaskStatus.TODO)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    stage_key = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.title


class MessageKind(models.TextChoices):
    LEARNER = "learner", _("Learner")
    AGENT = "agent", _("Agent")
    ORCHESTRATOR = "orchestrator", _("Orchestrator")
    SYSTEM = "system", _("System")


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    STREAMING = "streaming", _("Writing")
    DONE = "done", _("Done")
    GUIDED = "guided", _("Guidance instead")  # the boundary policy turned the request/reply into guidance
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class ChatMessage(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=12, choices=MessageKind.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    agent_name = models.CharField(max_length=40, blank=True)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.DONE)
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="pbl_message")
    # Policy decisions, scaffold type, the learner a scaffold is for, ...
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.speaker}: {self.text[:40]}"

    @property
    def speaker(self) -> str:
        if self.kind == MessageKind.LEARNER:
            return self.author.username if self.author else "learner"
        if self.kind == MessageKind.AGENT:
            return self.agent_name
        return self.get_kind_display()


class Verdict(models.TextChoices):
    COMPLETE = "complete", _("Complete")
    NEEDS_REVISION = "needs_revision", _("Needs revision")


class MilestoneSubmission(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="submissions")
    stage_key = models.CharField(max_length=40)
    milestone_key = models.CharField(max_length=40)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="pbl_submission")
    evaluated = models.BooleanField(default=False)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    criteria = models.JSONField(default=list, blank=True)  # [{key, text, verdict, feedback, evidence}]
    override_verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    override_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.stage_key}/{self.milestone_key} #{self.pk}"

    @property
    def effective_verdict(self) -> str:
        return self.override_verdict or (self.verdict if self.evaluated else "")


class ExamAttempt(models.Model):
    KIND_CHOICES = [("pre", "Pre-exam"), ("post", "Post-exam")]

    run = models.ForeignKey(ProjectRun, on_delete=models.CASCADE, related_name="exam_attempts")
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pbl_exams")
    kind = models.CharField(max_length=4, choices=KIND_CHOICES)
    answers = models.JSONField(default=dict)
    graded = models.JSONField(default=list)  # [{id, points, max_points, correct, feedback}]
    score = models.FloatField(default=0)
    max_score = models.FloatField(default=0)
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "learner", "kind"], name="pbl_one_attempt_per_exam")]

    def __str__(self) -> str:
        return f"{self.kind} {self.learner_id}: {self.score}/{self.max_score}"

    @property
    def fraction(self) -> float:
        return self.score / self.max_score if self.max_score else 0.0


class AppendOnlyError(Exception):
    pass


class Event(models.Model):
    """One xAPI-shaped statement: actor, verb, object, result, context, timestamp. Never changed."""

    run = models.ForeignKey(ProjectRun, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # "learner:<username>", "agent:<name>", "orchestrator", "judge", "teacher:<username>"
    actor_name = models.CharField(max_length=80)
    verb = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=80, blank=True)
    result = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["timestamp", "pk"]
        indexes = [models.Index(fields=["run", "actor", "timestamp"], name="pbl_event_run_actor_time")]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.verb} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Events are append-only.")
