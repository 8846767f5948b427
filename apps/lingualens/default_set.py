"""The default SAE set: what a newcomer browses on a fresh install without training anything.

On start (`make up` runs `manage.py lingualens_default_set`) one batch job is queued, once: it
builds the corpus (default_corpus.py, about 1.15M tokens of English and Chinese), collects the
lens model's residual stream after every layer of the set in one forward pass per batch, then
finishes one SAE after another: trains a TopK SAE on its layer, scores it against the catalogue
and has the assistant explain its best latents. So the first SAE is complete (browsable, scored,
explained) after about half of the set's wait, not at its end. An SAE's explanation runs in a
thread beside the next SAE's training and scoring: it waits on the assistant's server, which
works on the other core, so the lens model's thread would otherwise sit idle. Each stage is
skipped when already done and every long stage resumes from disk (activation shards, the
trainer's checkpoint, scores and explanations saved per feature and latent), so a killed
worker, or a stopped `make up`, continues where it was.

It runs on the batch queue, with one torch thread (Procfile), so interactive work (search,
steering, chat) never waits behind it. The LinguaLens pages show its stage and the expected
wait, from the rates measured while it runs (or the ones measured here before it has any)."""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.jobs.models import Job, JobStatus
from apps.jobs.progress_text import localize, made_from, message
from apps.jobs.services import JobCancelled, JobFailed, create_job, fail_job
from apps.lingualens import default_corpus
from apps.lingualens.models import SAE, ActivationRun, Corpus, FeatureScore, LinguisticFeature, RunStatus
from apps.lingualens.progress import ALONGSIDE, TRAINING_STEP, WAIT_MARK, WITH_WAIT

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
# The real set's first SAE (stop 25, README) gave the three below: 412-418 s, about 18 min, 721-1,101 s.
STATS_SECONDS = 450.0  # metrics, CE recovered and latent statistics of one SAE over 1M tokens
SCORE_SECONDS = 1080.0  # 48 features of 80 pairs, held-out FRC and FIC, one SAE
EXPLAIN_SECONDS = 1200.0  # 24 latents, an explanation and 20 one-word detection questions each


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
        found.append(Stage(f"score L{sae.layer}", SCORE_SECONDS, _scored_share(sae)))
        found.append(Stage(f"explain L{sae.layer}", EXPLAIN_SECONDS, _explained_share(sae)))
    return found


# Scores and explanations are saved one feature and one latent at a time: the pages' wait counts
# what is saved (as the chain's own progress does), not only whole stages.
def _scored_share(sae: SAE) -> float:
    if sae.scored:
        return 1.0
    features = LinguisticFeature.objects.count()
    return FeatureScore.objects.filter(sae=sae, rank=0).count() / features if features else 0.0


def _explained_share(sae: SAE) -> float:
    if is_explained(sae) or not EXPLAIN_LATENTS:  # none to explain (the bench's --explain 0)
        return 1.0
    if not sae.scored:
        return 0.0
    latents = sae.latents.exclude(explanation="")
    # As explain_latents reports: writing the explanations is the first 30%, judging them the rest.
    written, judged = latents.count(), latents.filter(explanation_detail__has_key="judged").count()
    return min(1.0, (0.3 * written + 0.7 * judged) / EXPLAIN_LATENTS)


def is_explained(sae: SAE) -> bool:
    return bool(sae.metrics.get("explained"))


def is_finished(sae: SAE) -> bool:
    """Trained, scored and explained: everything a researcher browses is there."""
    return sae.status == RunStatus.COMPLETE and sae.scored and is_explained(sae)


def _is_explanation(index: int) -> bool:
    """Whether stage `index` of the plan is an SAE's explanation (its fourth stage)."""
    return index > 0 and index % STAGES_PER_SAE == 0


def timeline(plan: list[Stage]) -> tuple[float, list[float]]:
    """Seconds left until the whole set is done, and until each SAE is, as _work runs the stages:
    the collection, then each SAE's training, statistics and scoring on the lens model's thread;
    its explanation starts when its scoring and the previous SAE's explanation have ended, and
    runs beside the next SAE's training and scoring."""
    clock = plan[0].left
    explained = clock
    ready = []
    for at in range(1, len(plan), STAGES_PER_SAE):
        train, statistics, score, explain = plan[at : at + STAGES_PER_SAE]
        clock = max(clock + train.left + statistics.left + score.left, explained)
        explained = clock + explain.left
        ready.append(explained)
    return max(clock, explained), ready


def _next_ready(ready: list[float], saes: list[SAE]) -> tuple[int | None, float | None]:
    """The layer of the next SAE to be finished and the seconds until it is (`ready`: the
    timeline's seconds until each SAE is); (None, None) when every SAE is."""
    for number, sae in enumerate(saes):
        if not is_finished(sae):
            return sae.layer, ready[number]
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
    seconds_left, ready = timeline(plan)
    next_layer, next_seconds = _next_ready(ready, saes)
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
        # The job's message without the wait _Progress adds: the notice states the wait once.
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


class _Progress:
    """The chain's progress while up to two stages run at once (an SAE's explanation beside the
    next SAE's training and scoring): the job's message shows both, and the wait is the
    timeline's with the shares each stage reported. Past LINK_SECONDS a report raises
    ContinueLater, where `stoppable(message)` allows (a stage's last steps that cannot resume,
    such as an SAE's metrics and statistics, run to the end); `halt` stops the explanation's
    thread at its next report when the lens model's thread has stopped."""

    def __init__(self, job: Job, plan: list[Stage], started: float):
        self.job, self.plan, self.started = job, plan, started
        self.lock = threading.Lock()
        self.shares: dict[int, float] = {}  # stage index -> share done, as reported in this link
        self.texts: dict[str, str] = {}  # "main" or "beside" -> its stage's last message
        self.whole, _ = timeline([Stage(stage.name, stage.seconds, 0.0) for stage in plan])
        self.halt = threading.Event()

    def reporter(self, index: int, lane: str = "main", stoppable=None):
        from apps.jobs.services import report_progress

        with self.lock:
            if lane == "main":  # the lens model's thread moved on: its stages before this one ended
                for earlier in range(index):
                    if not _is_explanation(earlier):  # explanations run in the other lane
                        self.shares[earlier] = 1.0

        def report(fraction: float, text: str) -> None:
            with self.lock:
                self.shares[index] = max(self.shares.get(index, 0.0), fraction)
                self.texts[lane] = text
                live = [
                    Stage(stage.name, stage.seconds, max(stage.done, self.shares.get(at, 0.0)))
                    for at, stage in enumerate(self.plan)
                ]
                left, _ = timeline(live)
                shown = [self.texts[name] for name in ("main", "beside") if name in self.texts]
                step = shown[0] if len(shown) == 1 else message(ALONGSIDE, step=shown[0], other=shown[1])
                report_progress(
                    self.job,
                    1 - left / (self.whole or 1.0),
                    message(WITH_WAIT, step=step, minutes=max(1, round(left / 60))),
                )
            if lane == "beside" and self.halt.is_set():
                raise ContinueLater
            if time.monotonic() - self.started > LINK_SECONDS and (stoppable is None or stoppable(text)):
                raise ContinueLater

        return report

    def ended(self, index: int, lane: str) -> None:
        with self.lock:
            self.shares[index] = 1.0
            self.texts.pop(lane, None)


class _Beside:
    """One SAE's explanation in a thread beside the lens model's. What it raised (ContinueLater,
    JobCancelled, an error) is raised by `wait` in the chain's thread."""

    def __init__(self, progress: _Progress):
        self.progress = progress
        self.thread: threading.Thread | None = None
        self.outcome: tuple[str | None, BaseException | None] = (None, None)

    def start(self, sae: SAE, assistant, index: int) -> None:
        def body() -> None:
            try:
                error = _explain(sae, assistant, self.progress.reporter(index, "beside"))
                self.outcome = (error, None)
                self.progress.ended(index, "beside")
            except BaseException as exc:  # noqa: BLE001  (handed to the chain's thread)
                self.outcome = (None, exc)
            finally:
                connections.close_all()  # this thread's own database connection

        self.thread = threading.Thread(target=body, name=f"explain-{sae.slug}", daemon=True)
        self.thread.start()

    def wait(self) -> str | None:
        """The explanation's error line (None when it went well); what it raised is raised here."""
        if self.thread is None:
            return None
        self.thread.join()
        self.thread = None
        (error, raised), self.outcome = self.outcome, (None, None)
        if raised is not None:
            raise raised
        return error

    def stop(self) -> None:
        """The chain's thread stopped: the explanation stops at its next report (its latents so
        far are saved) and the link ends after it."""
        self.progress.halt.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None


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
    progress = _Progress(job, stages(run, saes), started)
    if run.status != RunStatus.COMPLETE:
        pipeline.collect_activations(run, backend, progress.reporter(0))
    errors = []
    beside = _Beside(progress)
    try:
        for number, sae in enumerate(saes):
            first = 1 + STAGES_PER_SAE * number  # this SAE's training stage in the plan
            # Training steps stop at a checkpoint; the metrics and statistics after them do not.
            _train(sae, backend, progress.reporter(first, stoppable=lambda text: made_from(TRAINING_STEP, text)))
            _score(sae, backend, progress.reporter(first + 2))
            progress.ended(first + 2, "main")  # while it waits, the message shows the explanation alone
            errors.append(beside.wait())  # one explanation at a time: the assistant's server is shared
            beside.start(sae, assistant, first + 3)
        errors.append(beside.wait())
    except BaseException:
        beside.stop()
        raise
    timings = {"activations": run.seconds or 0.0}
    for sae in saes:
        sae.refresh_from_db()
        timings[f"train L{sae.layer}"] = sae.train_seconds or 0.0
        timings[f"statistics L{sae.layer}"] = sae.metrics.get("stats_seconds", 0.0)
        timings[f"score L{sae.layer}"] = sae.metrics.get("score_seconds", 0.0)
        timings[f"explain L{sae.layer}"] = sae.metrics.get("explain_seconds", 0.0)
    result = {"saes": [sae.slug for sae in saes], "tokens": run.n_tokens, "seconds": timings}
    if any(errors):
        raise JobFailed("Explanations failed (the next start retries them): " + "; ".join(filter(None, errors)), result)
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
    except (ContinueLater, JobCancelled):
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
