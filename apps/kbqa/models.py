from django.conf import settings
from django.db import models

from apps.jobs.models import STOPPED_STATUSES, JobBacked, JobStatus


class KnowledgeBase(models.Model):
    """A knowledge base in KoPL's JSON format (concepts, entities, attributes, relations).

    The KoPL JSON lives in `data`, a JSONField, rather than in a file under var/: in the compose
    deployment the web and worker containers share the database but not var/, and the parser
    tasks that come next run in workers. Keeping it in the row also makes an import atomic (the
    row and its content appear together) and backups complete. Lists must `.defer("data")`
    (see services.list_kbs), because a real KB is a few megabytes.
    """

    name = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.TextField(blank=True, help_text="Provenance: where the data comes from (package and version).")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="knowledge_bases"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # {"entities", "concepts", "relations", "attributes", "relation_facts", "attribute_facts", "qualifier_facts"}
    stats = models.JSONField(default=dict)
    data = models.JSONField(default=dict)
    # sha256 of the normalized content: the per-process engine cache rebuilds when it changes.
    content_hash = models.CharField(max_length=64, blank=True)
    # What the pages show, computed once per content (see apps.kbqa.summary): {"version", "hash",
    # "schema", "examples", "readability"}. Pages read this, never `data`.
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ParserQuerySet(models.QuerySet):
    def ready(self) -> "ParserQuerySet":
        return self.filter(trained_at__isnull=False)

    def not_failed(self) -> "ParserQuerySet":
        """Ready or still training."""
        return self.exclude(trained_at__isnull=True, job__status__in=STOPPED_STATUSES)


class ParserModel(JobBacked):
    """A trained sketch parser (ProgramTransfer's first stage) with the generated question-program
    pairs it learned from. The argument parser has no weights: it reads whichever KB is asked.
    Trained in a `kbqa.train` job, or inline by the first question asked on a fresh install."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    source_kb = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="parsers")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="kbqa_parsers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    trained_at = models.DateTimeField(null=True, blank=True)  # set with the classifier: ready from then on
    # {"classes", "coef", "intercept"}: plain numbers, loaded without unpickling anything.
    classifier = models.JSONField(default=dict)
    # {"train_size", "test_size", "sketch_accuracy", "per_template", "seconds", ...}
    metrics = models.JSONField(default=dict)
    # The generated pairs: [{"question", "program", "answer", "template", "sketch", "split"}]
    dataset = models.JSONField(default=list)

    objects = ParserQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"parser #{self.pk} ({self.source_kb.name})"

    @property
    def status(self) -> "ParserModel.Status":
        if self.trained_at is not None:
            return self.Status.READY
        return self.Status.FAILED if self.job_stopped else self.Status.TRAINING


class ParserEvaluation(JobBacked):
    """Accuracy of a parser on its source KB (held-out pairs) and on target KBs it never saw
    annotations for (transfer), with and without ontology-guided pruning."""

    parser = models.ForeignKey(ParserModel, on_delete=models.CASCADE, related_name="evaluations")
    created_at = models.DateTimeField(auto_now_add=True)
    # [{"kb", "setting": "in-KB"|"transfer", "wordings", "pruning", "n", "sketch_accuracy",
    #   "program_accuracy", "answer_accuracy", "latency_mean", "latency_p95", "candidates_before", ...}]
    results = models.JSONField(default=list)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} of parser #{self.parser_id}"


class Question(JobBacked):
    """One question asked on a KB (parsed and run by a `kbqa.ask` job), or one edited program
    re-run at once (no job): the parse and the execution."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kbqa_questions")
    kb = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="questions")
    parser = models.ForeignKey(ParserModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    edited_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="edits")
    text = models.TextField()
    error = models.TextField(blank=True)  # why the parse is partial; a crash's message is on the job
    # parser output: {"sketch", "sketches", "program", "candidates", "complete", "error", "pruning", "seconds"}
    parse = models.JSONField(default=dict)
    program = models.JSONField(default=list)
    # execute_program's output: {"steps", "answer", "error"}
    execution = models.JSONField(default=dict)
    # The second opinion: when the parser was unsure, a `kbqa.draft` job asks the assistant model
    # for a program after the parser's answer is saved and shown (it never waits for the model).
    draft_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.text[:80]

    class DraftStatus(models.TextChoices):
        NONE = "none", "None"  # the parser was sure (or an edited program): no draft asked for
        PENDING = "pending", "Pending"
        DONE = "done", "Done"  # scored beside the parser's candidates (it may or may not have won)
        FAILED = "failed", "Failed"  # no draft came back: the parser's answer stands

    @property
    def draft_status(self) -> "Question.DraftStatus":
        if not self.draft_job_id:
            return self.DraftStatus.NONE
        status = self.draft_job.status
        if status in (JobStatus.QUEUED, JobStatus.RUNNING):
            return self.DraftStatus.PENDING
        return self.DraftStatus.FAILED if status in STOPPED_STATUSES else self.DraftStatus.DONE

    @property
    def draft_error(self) -> str:
        """Why the draft failed: the job's message (model unreachable, timed out, crashed)."""
        return self.draft_job.error if self.draft_status == self.DraftStatus.FAILED else ""

    @property
    def status(self) -> "Question.Status":
        if self.job_active:
            return self.Status.PENDING
        return self.Status.FAILED if self.job_stopped else self.Status.DONE

    @property
    def failure(self) -> str:
        return self.error or self.job_error


class KBImport(JobBacked):
    """An uploaded KB on its way in. A big KB takes a while to validate and index, so the upload
    is stored here and imported by a cpu worker job with progress; errors stay on the row."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kb_imports")
    name = models.SlugField(max_length=80)
    title = models.CharField(max_length=200, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    raw = models.TextField(blank=True, help_text="The uploaded JSON; cleared once imported.")
    errors = models.JSONField(default=list)  # what the import found wrong in the file: refused
    kb = models.ForeignKey(KnowledgeBase, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import of {self.name}"

    @property
    def status(self) -> "KBImport.Status":
        # The job succeeds also when the file is refused: the problems are on the row.
        if self.errors or self.job_stopped:
            return self.Status.FAILED
        if self.kb_id or self.job_status == JobStatus.SUCCEEDED:
            return self.Status.DONE
        return self.Status.QUEUED
