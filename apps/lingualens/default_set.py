"""The default SAE set: what a newcomer browses on a fresh install without training anything.

On start (`make up` runs `manage.py lingualens_default_set`) one batch job is queued, once: it
builds the corpus (default_corpus.py, about 1.15M tokens of English and Chinese), collects the
lens model's residual stream after every layer of the set in one forward pass per batch, then
finishes one SAE after another: trains a TopK SAE on its layer, scores it against the catalogue
and has the assistant explain its best latents. So the first SAE is complete (browsable, scored,
explained) after about 40% of the set's wait, not at its end. Each stage is skipped when already
done and every long stage resumes from disk (activation shards, the trainer's checkpoint, scores
and explanations saved per feature and latent), so a killed worker, or a stopped `make up`,
continues where it was.

It runs on the batch queue, with one torch thread (Procfile), so interactive work (search,
steering, chat) never waits behind it. The LinguaLens pages show its stage and the expected
wait, from the rates measured while it runs (or the ones measured here before it has any)."""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.jobs.models import Job, JobStatus
from apps.jobs.progress_text import localize, made_from, message
from apps.jobs.services import JobFailed, create_job, fail_job
from apps.lingualens import default_corpus
from apps.lingualens.models import SAE, ActivationRun, Corpus, LinguisticFeature, RunStatus
from apps.lingualens.progress import TRAINING_STEP, WAIT_MARK, WITH_WAIT

logger = logging.getLogger(__name__)

KIND = "lingualens.default_set"
CORPUS_NAME = "LinguaLens default set (1M+ tokens, English + Chinese)"
SLUG_PREFIX = "default"
LAYERS = (3, 6, 9)  # Gemma-3-270m has 18 layers: early, a third in, the middle
WIDTH, K = 4096, 32
CORPUS_TOKENS = 1_150_000  # estimated from characters (default_corpus.estimate_tokens, within 3%)
TRAINING_TOKENS = 1_000_000  # about one pass over the training share (every tenth text is held out)
MAX_TOKENS_PER_TEXT = 160  # passages are about 100 tokens; none is cut
EXPLAIN_LATENTS = 24  # per SAE: the best latents of linguistic features, then the densest
LOCK_KEY = 0x4C4C4453  # "LLDS": one ensure at a time, even from two starts at once

# Measured on the 2-core CPU machine shared with other work, one torch thread (bench/lingualens_default.py,
# README; load average 3-9): the wait shown before the job has measured its own rates.
COLLECT_TOKENS_PER_S = 650.0  # three layers, one forward pass (642-661 measured)
TRAIN_TOKENS_PER_S = 1500.0  # width 4096, k 32 (1,100-3,500 measured, by load)
STATS_SECONDS = 600.0  # metrics, CE recovered and latent statistics of one SAE over 1M tokens (110-190 s on 150k)
SCORE_SECONDS = 900.0  # 48 features, held-out FRC and FIC, one SAE (903 s measured)
EXPLAIN_SECONDS = 1800.0  # 24 latents, an explanation and 20 one-word detection questions each (460-680 s per 8)


def service_owner():
    """Who owns the chain's job: the first administrator, or an inactive service account."""
    from apps.accounts.models import Role, User

    owner = User.objects.filter(is_superuser=True).order_by("pk").first()
    owner = owner or User.objects.filter(role=Role.ADMIN).order_by("pk").first()
    if owner is None:
        owner, created = User.objects.get_or_create(
            username="lingualens-default", defaults={"role": Role.RESEARCHER, "is_active": False}
        )
        if created:
            owner.set_unusable_password()
            owner.save()
    return owner


def corpus_head() -> list[str]:
    """The LinguaLens default corpus (about 40k tokens): the catalogue's own sentences lead."""
    from apps.lingualens.services import ensure_default_corpus

    return ensure_default_corpus().texts


def ensure_corpus() -> Corpus:
    corpus = Corpus.objects.filter(name=CORPUS_NAME).first()
    if corpus is not None:
        return corpus
    texts, counts = default_corpus.build_texts(CORPUS_TOKENS, corpus_head())
    source = f"{default_corpus.SOURCE_NOTE} Texts and estimated tokens per source: {counts}."
    return Corpus.objects.create(name=CORPUS_NAME, source=source, texts=texts, n_chars=sum(map(len, texts)))


def _create_set(owner) -> dict:
    from apps.lingualens.services import DEFAULT_MODEL

    corpus = ensure_corpus()
    run = ActivationRun.objects.create(
        owner=owner,
        model_name=DEFAULT_MODEL,
        corpus=corpus,
        layers=list(LAYERS),
        max_texts=len(corpus.texts),
        max_tokens_per_text=MAX_TOKENS_PER_TEXT,
    )
    saes = []
    for layer in LAYERS:
        slug = f"{SLUG_PREFIX}-l{layer}-w{WIDTH}-k{K}"
        if SAE.objects.filter(slug=slug).exists():  # a set from an earlier database's var/ never collides
            slug = f"{slug}-{run.pk}"
        saes.append(
            SAE.objects.create(
                owner=owner, run=run, slug=slug, layer=layer, width=WIDTH, k=K, training_tokens=TRAINING_TOKENS
            )
        )
    return {"run_id": run.pk, "sae_ids": [sae.pk for sae in saes]}


def latest_job() -> Job | None:
    return Job.objects.filter(kind=KIND).order_by("-created_at").first()


def ensure_default_set(stale_after: float | None = None) -> tuple[Job, bool]:
    """Queue the chain unless it is done, queued, running, or was cancelled by someone. A job left
    'running' by a worker that stopped (no heartbeat for `stale_after` seconds; make up passes 0,
    since nothing else runs before its workers) is failed and a new job resumes the same set.
    Returns (the chain's job, whether it was queued now)."""
    stale_after = settings.JOB_STALE_AFTER_SECONDS if stale_after is None else stale_after
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        job = latest_job()
        params = None
        if job is not None:
            if job.status == JobStatus.SUCCEEDED or job.status == JobStatus.CANCELLED and job.cancel_requested:
                return job, False
            if job.status == JobStatus.QUEUED:
                return job, False
            if job.status == JobStatus.RUNNING:
                heartbeat = job.heartbeat_at or job.started_at or job.created_at
                if heartbeat > timezone.now() - timedelta(seconds=stale_after):
                    return job, False
                fail_job(job, "The worker stopped during this job; a new job resumes the set where it was.")
            params = job.params
            exists = ActivationRun.objects.filter(pk=params.get("run_id")).exists()
            if not exists or SAE.objects.filter(pk__in=params.get("sae_ids", [])).count() != len(LAYERS):
                params = None  # someone deleted the set: start a new one
        owner = job.owner if job is not None else service_owner()
        if not LinguisticFeature.objects.exists():  # compose has no demo loader: score against the shipped one
            from apps.lingualens.services import load_default_catalogue

            load_default_catalogue()
        return create_job(owner, KIND, params or _create_set(owner)), True


# ---- progress and the expected wait ------------------------------------------------------------


@dataclass
class Stage:
    name: str
    seconds: float  # estimated duration of the whole stage
    done: float  # share of it done (0-1)

    @property
    def left(self) -> float:
        return self.seconds * (1 - self.done)


def _collect_measured(run: ActivationRun) -> bool:
    # Once a few minutes are measured, the run's own rate (the machine's load included) is the best guess.
    return bool(run.seconds and run.seconds > 120 and run.n_tokens)


def _collect_rate(run: ActivationRun) -> float:
    return run.n_tokens / run.seconds if _collect_measured(run) else COLLECT_TOKENS_PER_S


def _train_measured(saes: list[SAE]) -> bool:
    return sum(sae.train_seconds or 0 for sae in saes if sae.steps_done) > 60


def _train_rate(saes: list[SAE]) -> float:
    steps = sum(sae.steps_done for sae in saes)
    seconds = sum(sae.train_seconds or 0 for sae in saes if sae.steps_done)
    return steps * saes[0].batch_size / seconds if _train_measured(saes) else TRAIN_TOKENS_PER_S


STAGES_PER_SAE = 4  # train, statistics, score, explain


def stages(run: ActivationRun, saes: list[SAE]) -> list[Stage]:
    """The chain in order: one collection for every layer, then each SAE finished in turn
    (trained, its statistics, scored, explained) so the first is complete long before the set."""
    expected = max(run.n_tokens, round(CORPUS_TOKENS * 0.98)) if run.status != RunStatus.COMPLETE else run.n_tokens
    collected = 1.0 if run.status == RunStatus.COMPLETE else min(1.0, run.n_tokens / max(1, expected))
    found = [Stage("activations", expected / _collect_rate(run), collected)]
    train_rate = _train_rate(saes)
    for sae in saes:
        complete = sae.status == RunStatus.COMPLETE
        steps = sae.steps_total or -(-sae.training_tokens // sae.batch_size)
        done = 1.0 if complete else sae.steps_done / steps
        found.append(Stage(f"train L{sae.layer}", steps * sae.batch_size / train_rate, done))
        found.append(Stage(f"statistics L{sae.layer}", STATS_SECONDS, 1.0 if complete else 0.0))
        found.append(Stage(f"score L{sae.layer}", SCORE_SECONDS, 1.0 if sae.scored else 0.0))
        found.append(Stage(f"explain L{sae.layer}", EXPLAIN_SECONDS, 1.0 if is_explained(sae) else 0.0))
    return found


def is_explained(sae: SAE) -> bool:
    return bool(sae.metrics.get("explained"))


def is_finished(sae: SAE) -> bool:
    """Trained, scored and explained: everything a researcher browses is there."""
    return sae.status == RunStatus.COMPLETE and sae.scored and is_explained(sae)


def _next_ready(plan: list[Stage], saes: list[SAE]) -> tuple[int | None, float | None]:
    """The layer of the next SAE to be finished and the seconds until it is (its stages and all
    before them); (None, None) when every SAE is."""
    for number, sae in enumerate(saes):
        if not is_finished(sae):
            return sae.layer, sum(stage.left for stage in plan[: 1 + STAGES_PER_SAE * (number + 1)])
    return None, None


def set_objects(job: Job) -> tuple[ActivationRun, list[SAE]]:
    run = ActivationRun.objects.select_related("corpus").get(pk=job.params["run_id"])
    saes = list(SAE.objects.filter(pk__in=job.params["sae_ids"]).select_related("run").order_by("layer"))
    return run, saes


def status() -> dict | None:
    """What the LinguaLens pages say about the chain: None once it succeeded (or never ran)."""
    job = latest_job()
    if job is None or job.status == JobStatus.SUCCEEDED:
        return None
    try:
        run, saes = set_objects(job)
    except ActivationRun.DoesNotExist:
        return None
    plan = stages(run, saes)
    seconds_left = sum(stage.left for stage in plan)
    next_layer, next_seconds = _next_ready(plan, saes)
    return {
        "job": job,
        "layers": [sae.layer for sae in saes],
        "ready": [sae for sae in saes if is_finished(sae)],
        "next_layer": next_layer,
        "next_minutes": max(1, round(next_seconds / 60)) if next_seconds is not None else None,
        "width": WIDTH,
        "tokens": f"{CORPUS_TOKENS:,}",
        "seconds_left": seconds_left,
        "minutes_left": max(1, round(seconds_left / 60)),
        "collect_rate": _collect_rate(run),
        "train_rate": _train_rate(saes),
        "collect_measured": _collect_measured(run),
        "train_measured": _train_measured(saes),
        "stopped": job.is_finished,
        # The job's message without the wait _reporter adds: the notice states the wait once.
        "step": localize(job.progress_message.split(WAIT_MARK)[0]),
    }


# ---- the job (workers: apps.lingualens tasks, batch queue) --------------------------------------

# One link of the chain works this long at most, then queues the next link and ends. Why: with
# Redis, Celery hands an unacknowledged task to another worker after the visibility timeout
# (an hour), and a user's own training on the batch queue waits at most one link.
LINK_SECONDS = 25 * 60


class ContinueLater(Exception):  # noqa: N818  (a signal, not an error)
    """Raised from a progress report when the link has run long enough; every stage saves its
    state on the way out (shards, checkpoint, scores per feature, explanations per latent)."""


def _reporter(job: Job, plan: list[Stage], index: int, started: float, stoppable=None):
    """Progress of stage `index` mapped onto the whole chain, weighted by estimated durations.
    Past LINK_SECONDS it raises ContinueLater, where `stoppable(message)` allows (a stage's
    last steps that cannot resume, such as an SAE's metrics and statistics, run to the end)."""
    from apps.jobs.services import report_progress

    total = sum(stage.seconds for stage in plan) or 1.0
    before = sum(stage.seconds for stage in plan[:index])

    def report(fraction: float, text: str) -> None:
        left = sum(stage.left for stage in plan[index + 1 :]) + plan[index].seconds * (1 - fraction)
        minutes = max(1, round(left / 60))
        done = (before + plan[index].seconds * fraction) / total
        report_progress(job, done, message(WITH_WAIT, step=text, minutes=minutes))
        if time.monotonic() - started > LINK_SECONDS and (stoppable is None or stoppable(text)):
            raise ContinueLater

    return report


def run_default_set(job: Job, backend=None, assistant=None) -> dict:
    """One link of the chain: do what is left, in order, until done or LINK_SECONDS have passed."""
    run, saes = set_objects(job)
    started = time.monotonic()
    try:
        return _work(job, run, saes, started, backend, assistant)
    except ContinueLater:
        with transaction.atomic():
            following = create_job(job.owner, KIND, {**job.params, "link": job.params.get("link", 1) + 1})
        return {"continued_in_job": following.pk}


def _work(job: Job, run: ActivationRun, saes: list[SAE], started: float, backend, assistant) -> dict:
    from apps.lingualens import pipeline

    backend = backend or pipeline.lens_backend(run.model_name)
    plan = stages(run, saes)
    if run.status != RunStatus.COMPLETE:
        pipeline.collect_activations(run, backend, _reporter(job, plan, 0, started))
    timings = {"activations": run.seconds or 0.0}
    errors = []
    for number, sae in enumerate(saes):
        first = 1 + STAGES_PER_SAE * number  # this SAE's training stage in the plan
        # Training steps stop at a checkpoint; the metrics and statistics after them do not.
        _train(sae, backend, _reporter(job, plan, first, started, lambda text: made_from(TRAINING_STEP, text)))
        _score(sae, backend, _reporter(job, plan, first + 2, started))
        error = _explain(sae, assistant, _reporter(job, plan, first + 3, started))
        if error:
            errors.append(error)
        timings[f"train L{sae.layer}"] = sae.train_seconds or 0.0
        timings[f"statistics L{sae.layer}"] = sae.metrics.get("stats_seconds", 0.0)
        timings[f"score L{sae.layer}"] = sae.metrics.get("score_seconds", 0.0)
        timings[f"explain L{sae.layer}"] = sae.metrics.get("explain_seconds", 0.0)
    result = {"saes": [sae.slug for sae in saes], "tokens": run.n_tokens, "seconds": timings}
    if errors:
        raise JobFailed("Explanations failed (the next start retries them): " + "; ".join(errors), result)
    return result


def _train(sae: SAE, backend, report) -> None:
    """Train the SAE (resuming its checkpoint), then its metrics and latent statistics. The report
    stops a link only between training steps (the statistics after them do not resume)."""
    from apps.lingualens import pipeline

    if sae.status == RunStatus.COMPLETE:
        return
    try:
        clock, trained_before = time.monotonic(), sae.train_seconds or 0.0
        pipeline.train_sae(sae, backend, report)
    except (ContinueLater, JobFailed):
        raise
    except Exception:
        SAE.objects.filter(pk=sae.pk).exclude(status=RunStatus.PARTIAL).update(status=RunStatus.FAILED)
        raise
    sae.refresh_from_db()
    # Metrics and latent statistics: what this link spent beyond the training steps.
    spent = time.monotonic() - clock - ((sae.train_seconds or 0.0) - trained_before)
    _note(sae, stats_seconds=round(spent, 1))


def _score(sae: SAE, backend, report) -> None:
    from apps.lingualens import pipeline
    from apps.lingualens.models import FeatureScore

    if sae.scored:
        return
    # Features scored by an earlier link keep their scores.
    done = set(FeatureScore.objects.filter(sae=sae).values_list("feature_id", flat=True))
    todo = list(LinguisticFeature.objects.exclude(pk__in=done).values_list("pk", flat=True))
    clock = time.monotonic()
    try:
        if todo:  # progress counts the earlier link's features: "Scored 2/48", not "2/47"
            pipeline.score_sae(sae, backend, report, todo, already=len(done))
    except ContinueLater:
        # A link that stops mid-way keeps its time: the wait estimate and the bench add it up.
        _note(sae, score_seconds=sae.metrics.get("score_seconds", 0.0) + time.monotonic() - clock)
        raise
    SAE.objects.filter(pk=sae.pk).update(scored=True)
    sae.refresh_from_db()
    _note(sae, score_seconds=sae.metrics.get("score_seconds", 0.0) + time.monotonic() - clock)


def _explain(sae: SAE, assistant, report) -> str | None:
    """Explain the SAE's chosen latents; returns an error line when the assistant failed (the
    SAE stays usable and the chain goes on: the next start retries)."""
    from apps.lingualens import explain, pipeline

    if is_explained(sae):
        return None
    clock = time.monotonic()
    chosen = explain.default_latents(sae, EXPLAIN_LATENTS)
    # Not yet judged: unexplained, or explained by a link that stopped before detection.
    unjudged = sae.latents.filter(index__in=chosen).exclude(explanation_detail__has_key="judged")
    todo = list(unjudged.values_list("index", flat=True))
    try:
        if todo:
            pipeline.explain_sae(sae, EXPLAIN_LATENTS, todo, report, assistant)
    except ContinueLater:
        _note(sae, explain_seconds=sae.metrics.get("explain_seconds", 0.0) + time.monotonic() - clock)
        raise
    except Exception as exc:  # the assistant's server may be down: the rest stays usable
        logger.exception("explaining %s failed", sae.slug)
        return f"{sae.slug}: {type(exc).__name__}: {exc}"
    seconds = sae.metrics.get("explain_seconds", 0.0) + time.monotonic() - clock
    _note(sae, explained=len(chosen), explain_seconds=seconds)
    return None


def _note(sae: SAE, **values) -> None:
    """Stage bookkeeping in the SAE's metrics (read back by the wait estimate and the bench)."""
    sae.metrics = {**sae.metrics, **values}
    SAE.objects.filter(pk=sae.pk).update(metrics=sae.metrics)
