"""LinguaLens data: the linguistic feature catalogue, corpora, activation runs, SAEs and
what was learned about their latents. Big arrays live on disk (see storage.py); Postgres
holds what pages list and search."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.jobs.models import JobBacked


class Language(models.TextChoices):
    # A context of its own: the language switcher names English in English, a feature's is 英语.
    EN = "en", pgettext_lazy("language of a linguistic feature", "English")
    ZH = "zh", _("Chinese")


class Dimension(models.TextChoices):
    MORPHOLOGY = "morphology", _("Morphology")
    SYNTAX = "syntax", _("Syntax")
    SEMANTICS = "semantics", _("Semantics")
    PRAGMATICS = "pragmatics", _("Pragmatics")


class LinguisticFeature(models.Model):
    language = models.CharField(max_length=2, choices=Language.choices)
    dimension = models.CharField(max_length=12, choices=Dimension.choices)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["language", "dimension", "name"]
        constraints = [models.UniqueConstraint(fields=["language", "name"], name="lingualens_feature_unique_name")]

    def __str__(self) -> str:
        return f"{self.language}/{self.dimension}: {self.name}"


def check_pair(sentence: str, counterfactual: str, span: str) -> None:
    """The one rule for a counterfactual pair, used by the form, the API and the importer."""
    if not sentence.strip() or not counterfactual.strip() or not span.strip():
        raise ValidationError("sentence, counterfactual and span must all be non-empty")
    if span not in sentence:
        raise ValidationError(f"the span {span!r} does not occur in the sentence {sentence!r}")
    if sentence.strip() == counterfactual.strip():
        raise ValidationError("the counterfactual must differ from the sentence")


class CounterfactualPair(models.Model):
    feature = models.ForeignKey(LinguisticFeature, on_delete=models.CASCADE, related_name="pairs")
    sentence = models.CharField(max_length=500)
    counterfactual = models.CharField(max_length=500)
    span = models.CharField(max_length=200)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.sentence} / {self.counterfactual}"

    def save(self, *args, **kwargs) -> None:
        check_pair(self.sentence, self.counterfactual, self.span)  # never stored broken, whoever saves
        super().save(*args, **kwargs)

    def clean(self) -> None:
        check_pair(self.sentence, self.counterfactual, self.span)

    @property
    def span_parts(self) -> tuple[str, str, str]:
        before, _found, after = self.sentence.partition(self.span)
        return before, self.span, after


class Corpus(models.Model):
    name = models.CharField(max_length=120)
    source = models.TextField(help_text="Where the text comes from, shown in the UI.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    is_default = models.BooleanField(default=False)
    # Short documents (sentences, paragraphs): a few MB at most, so Postgres holds them.
    texts = models.JSONField(default=list)
    n_chars = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "-created_at"]
        verbose_name_plural = "corpora"

    def __str__(self) -> str:
        return self.name


def new_storage_key() -> str:
    """Folder name on disk: unique even across the test and dev databases sharing var/."""
    return uuid.uuid4().hex


class RunStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    COMPLETE = "complete", _("Complete")
    PARTIAL = "partial", _("Partial (stopped early)")
    FAILED = "failed", _("Failed")


class ActivationRun(JobBacked):
    """Residual-stream activations of `model_name` over a corpus for some layers, on disk as fp16."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    model_name = models.CharField(max_length=80, default="gemma3-270m")
    corpus = models.ForeignKey(Corpus, on_delete=models.PROTECT, related_name="runs")
    layers = models.JSONField(default=list)
    max_texts = models.PositiveIntegerField(default=2000)
    max_tokens_per_text = models.PositiveIntegerField(default=64)
    storage_key = models.CharField(max_length=32, default=new_storage_key, unique=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    n_texts_done = models.PositiveIntegerField(default=0)
    n_tokens = models.PositiveIntegerField(default=0)
    d_model = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.model_name}, layers {self.layers})"


class SAE(JobBacked):
    """A TopK sparse autoencoder trained on one layer of an activation run."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    run = models.ForeignKey(ActivationRun, on_delete=models.CASCADE, related_name="saes")
    slug = models.SlugField(max_length=80, unique=True)
    layer = models.PositiveIntegerField()
    width = models.PositiveIntegerField(default=1024)
    k = models.PositiveIntegerField(default=32)
    training_tokens = models.PositiveIntegerField(default=200_000)
    batch_size = models.PositiveIntegerField(default=512)
    lr = models.FloatField(default=2e-3)  # short CPU runs: measured 0.80 vs 0.64 EV at 4e-4
    seed = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    # l0, explained_variance, dead_share, ce_clean, ce_ablated, ce_sae, ce_recovered, mse
    metrics = models.JSONField(default=dict, blank=True)
    loss_curve = models.JSONField(default=list, blank=True)
    train_seconds = models.FloatField(null=True, blank=True)
    scored = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["layer", "-created_at"]

    def __str__(self) -> str:
        return self.slug

    @property
    def model_name(self) -> str:
        return self.run.model_name

    def feature_id(self, index: int) -> str:
        """Neuronpedia-style name of one latent: <model>@<sae>:<index>."""
        return f"{self.run.model_name}@{self.slug}:{index}"


class Latent(models.Model):
    """Statistics of one SAE latent over the run's corpus, and the researchers' note on it."""

    sae = models.ForeignKey(SAE, on_delete=models.CASCADE, related_name="latents")
    index = models.PositiveIntegerField()
    density = models.FloatField(default=0.0)
    max_activation = models.FloatField(default=0.0)
    mean_activation = models.FloatField(default=0.0)
    histogram = models.JSONField(default=dict, blank=True)  # {"edges": [...], "counts": [...]}
    top_contexts = models.JSONField(default=list, blank=True)  # [{"tokens": [...], "acts": [...], "max": x}]
    quantile_examples = models.JSONField(default=list, blank=True)  # [{"range": [lo, hi], "examples": [...]}]
    promoted = models.JSONField(default=list, blank=True)  # [[token, logit], ...]
    suppressed = models.JSONField(default=list, blank=True)
    neighbours = models.JSONField(default=list, blank=True)  # [[index, cosine], ...]
    note = models.TextField(blank=True)
    note_updated_at = models.DateTimeField(null=True, blank=True)
    # Written by the assistant model (explain.py); the score is the detection AUC on held-out
    # snippets (0.5 = chance), the detail holds each snippet's P(Yes) and the shuffled-explanation control.
    explanation = models.TextField(blank=True)
    explanation_score = models.FloatField(null=True, blank=True)
    explanation_detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["sae", "index"]
        constraints = [models.UniqueConstraint(fields=["sae", "index"], name="lingualens_latent_unique")]

    def __str__(self) -> str:
        return f"{self.sae_id}:{self.index}"

    @property
    def feature_id(self) -> str:
        return self.sae.feature_id(self.index)

    @property
    def is_dead(self) -> bool:
        return self.density == 0


class FeatureScore(models.Model):
    """How well one latent of an SAE represents one linguistic feature (LinguaLens' FRC and FIC).
    The latent and its threshold were chosen on the selection half of the feature's pairs; PS,
    PN, FRC (with its bootstrap interval) and FIC are measured on the held-out half (scoring.py)."""

    sae = models.ForeignKey(SAE, on_delete=models.CASCADE, related_name="scores")
    feature = models.ForeignKey(LinguisticFeature, on_delete=models.CASCADE, related_name="scores")
    latent_index = models.PositiveIntegerField()
    layer = models.PositiveIntegerField()
    rank = models.PositiveIntegerField()
    ps = models.FloatField()
    pn = models.FloatField()
    frc = models.FloatField()
    sensitivity = models.FloatField(default=0.0)
    fic = models.FloatField(null=True, blank=True)
    fic_detail = models.JSONField(default=dict, blank=True)
    threshold = models.FloatField(default=0.0)  # the latent "fires" above this activation
    frc_select = models.FloatField(null=True, blank=True)  # on the pairs it was chosen on
    frc_low = models.FloatField(null=True, blank=True)  # 95% bootstrap interval of the held-out FRC
    frc_high = models.FloatField(null=True, blank=True)
    n_select = models.PositiveIntegerField(default=0)
    n_heldout = models.PositiveIntegerField(default=0)
    # Held-out FRC the same selection reaches for a random feature (scoring.floor_frc): the bar to clear.
    floor_frc = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["feature", "layer", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["sae", "feature", "latent_index"], name="lingualens_score_unique")
        ]

    def __str__(self) -> str:
        return f"{self.feature_id} ~ {self.sae_id}:{self.latent_index} FRC {self.frc:.2f}"

    @property
    def beats_floor(self) -> bool | None:
        """Clearly above chance selection: the interval's low end is over the random floor."""
        if self.floor_frc is None or self.frc_low is None:
            return None
        return self.frc_low > self.floor_frc


class SteeringRun(models.Model):
    """Generation with and without an intervention on SAE latents, same prompt and seed."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="steering")
    sae = models.ForeignKey(SAE, on_delete=models.CASCADE, related_name="steering_runs")
    prompt = models.TextField()
    interventions = models.JSONField(default=list)  # [{"index": i, "strength": s, "mode": "add"|"set"}]
    # Off: strength x the raw decoder row, i.e. in units of the latent activation (Neuronpedia convention).
    normalize = models.BooleanField(default=False)
    seed = models.PositiveIntegerField(default=0)
    max_tokens = models.PositiveIntegerField(default=40)
    temperature = models.FloatField(default=0.7)
    output_plain = models.TextField(blank=True)
    output_steered = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"steering {self.pk} on {self.sae_id}"
