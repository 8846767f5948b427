"""The default SAE set: one batch job chain queued on start, once; it resumes after a stopped
worker; it collects every layer in one forward pass, then trains, scores and explains one SAE
after another; the LinguaLens pages state the wait while it runs, and link each finished SAE."""

import json
import threading
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from apps.jobs.models import Job, JobStatus
from apps.jobs.progress_text import message
from apps.jobs.services import JobCancelled, run_job
from apps.lingualens import default_corpus, default_set, pipeline, services
from apps.lingualens.models import SAE, ActivationRun, FeatureScore, Latent, LinguisticFeature, RunStatus
from apps.lingualens.progress import EXPLAINED, TRAINING_STEP

pytestmark = pytest.mark.django_db


@pytest.fixture
def links_kept_here(monkeypatch):
    """For tests that run the chain's links themselves and commit: the tasks the links queue are
    recorded, not sent. Why: the session's live stack (tests/live.py) may have a real batch worker
    on the test database, which would run the same links beside the test (and a whole default set
    after it). Returns the (task name, job id) pairs that would have been sent."""
    from config.celery import app as celery_app

    sent = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: sent.append((name, *args)))
    return sent


def test_corpus_is_over_a_million_tokens_of_both_languages():
    texts, counts = default_corpus.build_texts(default_set.CORPUS_TOKENS, ["A head text."])
    assert texts[0] == "A head text."
    assert counts["en"]["estimated_tokens"] > 400_000
    assert counts["zh"]["estimated_tokens"] > 400_000
    assert sum(map(default_corpus.estimate_tokens, texts)) >= 1_000_000
    # Tags of the People's Daily file are gone; the languages alternate after the head.
    assert not any("/n " in text or "/v " in text for text in texts[1:200])
    assert default_corpus.CJK.search(texts[1]) is None
    assert default_corpus.CJK.search(texts[2])
    assert max(map(default_corpus.estimate_tokens, texts)) < default_set.MAX_TOKENS_PER_TEXT


def test_ensure_queues_one_chain_and_a_second_start_queues_none(researcher):
    job, queued = default_set.ensure_default_set()
    assert queued
    assert job.kind == default_set.KIND
    assert job.queue == "batch"
    run = ActivationRun.objects.get(pk=job.params["run_id"])
    assert run.layers == list(default_set.LAYERS)
    assert len(run.layers) >= 3
    saes = SAE.objects.filter(pk__in=job.params["sae_ids"])
    assert sorted(sae.layer for sae in saes) == list(default_set.LAYERS)
    assert all(sae.width >= 4096 and sae.run_id == run.pk for sae in saes)
    assert len(run.corpus.texts) == run.max_texts > 10_000

    again, queued_again = default_set.ensure_default_set()
    assert again.pk == job.pk
    assert not queued_again
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    assert default_set.ensure_default_set() == (Job.objects.get(pk=job.pk), False)
    assert Job.objects.filter(kind=default_set.KIND).count() == 1


def test_a_stopped_worker_is_resumed_and_a_cancel_is_respected(researcher):
    job, _ = default_set.ensure_default_set()
    old = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=old)
    resumed, queued = default_set.ensure_default_set()
    assert queued
    assert resumed.pk != job.pk
    assert resumed.params == job.params  # the same run and SAEs, continued
    assert Job.objects.get(pk=job.pk).status == JobStatus.FAILED

    Job.objects.filter(pk=resumed.pk).update(status=JobStatus.CANCELLED, cancel_requested=True)
    assert default_set.ensure_default_set()[1] is False


def test_pages_state_the_wait_while_it_runs(researcher, client_for):
    job, _ = default_set.ensure_default_set()
    state = default_set.status()
    # Nothing done yet: the wait is the whole chain at the rates measured for the README.
    expected = default_set.CORPUS_TOKENS / default_set.COLLECT_TOKENS_PER_S
    assert state["seconds_left"] > expected
    client = client_for(researcher)
    for url in ("/lingualens/", "/lingualens/catalogue/", "/lingualens/search/", "/lingualens/steer/"):
        page = client.get(url).content.decode()
        assert 'id="default-set"' in page, url
        assert f"about {state['minutes_left']} min" in page, url
        assert "Queued: waiting for the batch worker." in page
        # The first SAE is finished on its own, long before the whole set.
        assert f"Layer {default_set.LAYERS[0]} ready to browse in about {state['next_minutes']} min." in page
    assert state["next_minutes"] < 0.6 * state["minutes_left"]
    assert 'id="default-set-ready"' not in page
    zh = client.get("/lingualens/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "默认 SAE 集" in zh
    assert f"第 {default_set.LAYERS[0]} 层约 {state['next_minutes']} 分钟后可以浏览。" in zh
    # An SAE still waiting says what comes once it is trained, instead of empty panels.
    waiting = SAE.objects.filter(pk__in=job.params["sae_ids"]).first()
    page = client.get(f"/lingualens/saes/{waiting.slug}/").content.decode()
    assert "It is scored against the catalogue once it is trained." in page
    assert 'id="explain-waits"' in page or "Explanations need the workers" in page

    # Once the first SAE is trained, scored and explained, the notice links it and counts to the next.
    first, second = SAE.objects.filter(pk__in=job.params["sae_ids"]).order_by("layer")[:2]
    SAE.objects.filter(pk=first.pk).update(status=RunStatus.COMPLETE, scored=True, metrics={"explained": 24})
    page = client.get("/lingualens/").content.decode()
    assert f'href="/lingualens/saes/{first.slug}/"' in page
    assert f"Layer {second.layer} ready to browse in about" in page
    # Nothing was collected yet: the second SAE waits for the collection and its own four stages.
    assert default_set.status()["next_minutes"] == state["next_minutes"]
    # Scores are saved a feature at a time: the wait counts those already saved.
    SAE.objects.filter(pk=second.pk).update(status=RunStatus.COMPLETE)
    ActivationRun.objects.filter(pk=job.params["run_id"]).update(status=RunStatus.COMPLETE)
    before = default_set.status()["seconds_left"]
    features = list(LinguisticFeature.objects.order_by("pk"))
    half = features[: len(features) // 2]
    FeatureScore.objects.bulk_create(
        FeatureScore(sae=second, feature=f, latent_index=1, layer=second.layer, rank=0, ps=1, pn=1, frc=1) for f in half
    )
    saved = before - default_set.status()["seconds_left"]
    assert saved == pytest.approx(default_set.SCORE_SECONDS * len(half) / len(features))
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert 'id="default-set"' not in client.get("/lingualens/").content.decode()


def test_a_set_without_explanations_counts_none_to_wait_for(researcher, monkeypatch):
    """The bench's small sets may explain no latent: the wait has no explanation stage left
    (it divided by zero)."""
    monkeypatch.setattr(default_set, "EXPLAIN_LATENTS", 0)
    job, _ = default_set.ensure_default_set()
    SAE.objects.filter(pk__in=job.params["sae_ids"]).update(scored=True)
    run, saes = default_set.set_objects(job)
    plan = default_set.stages(run, saes)
    assert [stage.done for stage in plan if stage.name.startswith("explain")] == [1.0] * len(saes)


def test_an_explanation_runs_beside_the_next_sae():
    """The wait counts each SAE's explanation beside the next SAE's training and scoring, one
    explanation at a time."""
    stage = default_set.Stage
    plan = [stage("activations", 100, 0.0)]
    for layer in (3, 6):
        plan += [stage(f"train L{layer}", 30, 0.0), stage("statistics", 10, 0.0), stage("score", 20, 0.0)]
        plan.append(stage(f"explain L{layer}", 40, 0.0))
    total, ready = default_set.timeline(plan)
    assert ready == [100 + 60 + 40, 100 + 60 + 60 + 40]  # the second explanation waits for its scoring
    assert total == ready[-1] < sum(s.seconds for s in plan)
    plan[4] = stage("explain L3", 90, 0.0)  # longer than the next SAE's three stages: the next waits
    assert default_set.timeline(plan)[1] == [250, 250 + 40]
    plan[1:4] = [stage(s.name, s.seconds, 1.0) for s in plan[1:4]]
    plan[0] = stage("activations", 100, 1.0)
    assert default_set.timeline(plan)[1] == [90, 90 + 40]


@pytest.mark.django_db(transaction=True)  # the explanation's thread has its own connection
def test_an_sae_is_explained_beside_the_next_ones_training(researcher, monkeypatch, links_kept_here):
    """The first SAE's explanation and the second's training wait for each other to start: run
    one after the other, each would wait in vain. The chain's message shows both stages."""
    job, _ = default_set.ensure_default_set()
    ActivationRun.objects.filter(pk=job.params["run_id"]).update(status=RunStatus.COMPLETE)
    first, second = default_set.LAYERS[:2]
    explaining, training, explained = threading.Event(), threading.Event(), threading.Event()
    order, shown = [], []

    def train(sae, backend, report):
        order.append(("train", sae.layer))
        if sae.layer == second:
            training.set()
            assert explaining.wait(60), "the first SAE's explanation did not start beside this training"
            assert explained.wait(60)
            report(0.5, message(TRAINING_STEP, step=1, steps=2, mse="0.1"))
            shown.append(Job.objects.get(pk=job.pk).progress_message)
        SAE.objects.filter(pk=sae.pk).update(status=RunStatus.COMPLETE)

    def score(sae, backend, report):
        order.append(("score", sae.layer))
        SAE.objects.filter(pk=sae.pk).update(scored=True)

    def explain(sae, assistant, report):
        order.append(("explain", sae.layer))
        if sae.layer == first:
            explaining.set()
            assert training.wait(60), "the second SAE's training did not start beside this explanation"
            report(0.5, message(EXPLAINED, done=1, total=2, latent=7, explanation="the word 吗"))
            explained.set()
        default_set._note(sae, explained=2)
        return None

    monkeypatch.setattr(default_set, "_train", train)
    monkeypatch.setattr(default_set, "_score", score)
    monkeypatch.setattr(default_set, "_explain", explain)
    result = default_set.run_default_set(Job.objects.get(pk=job.pk), backend=object(), assistant=object())
    assert result["saes"] == [sae.slug for sae in SAE.objects.filter(run_id=job.params["run_id"]).order_by("layer")]
    # Training, scoring and explaining of each SAE, each once; the second SAE's training went
    # on while the first was explained.
    assert order[:2] == [("train", first), ("score", first)]
    assert set(order[2:4]) == {("explain", first), ("train", second)}
    expected = [(stage, layer) for layer in default_set.LAYERS for stage in ("train", "score", "explain")]
    assert sorted(order) == sorted(expected)
    assert shown[0].startswith("SAE step 1/2, normalized MSE 0.1; alongside: Explained 1/2: #7 the word 吗 · about "), (
        shown
    )
    assert all(default_set.is_finished(sae) for sae in SAE.objects.filter(run_id=job.params["run_id"]))


@pytest.mark.model
@pytest.mark.django_db(transaction=True)  # the explanation's thread has its own connection: it must see commits
def test_the_chain_runs_in_links_and_resumes_from_disk(
    researcher, lens_dir, gemma, assistant_server, monkeypatch, client_for, links_kept_here
):
    """A tiny set with links of zero seconds: every link stops at its first chance, so the set
    is finished by a dozen jobs, each resuming from what the last left on disk."""
    monkeypatch.setattr(default_set, "LAYERS", (2, 4))
    monkeypatch.setattr(default_set, "WIDTH", 128)
    monkeypatch.setattr(default_set, "K", 8)
    monkeypatch.setattr(default_set, "CORPUS_TOKENS", 5000)
    monkeypatch.setattr(default_set, "TRAINING_TOKENS", 3000)
    monkeypatch.setattr(default_set, "EXPLAIN_LATENTS", 1)
    monkeypatch.setattr(default_set, "LINK_SECONDS", 0)
    monkeypatch.setattr(default_set, "CORPUS_NAME", "tiny default set")
    monkeypatch.setattr(default_set, "corpus_head", lambda: services.ensure_default_corpus().texts[:20])
    catalogue = [json.loads(line) for line in services.CATALOGUE_PATH.read_text(encoding="utf-8").splitlines()]
    record = catalogue[-1]  # one Chinese feature with 12 pairs: every stage, kept short
    record["pairs"] = record["pairs"][:12]
    services.import_catalogue(json.dumps(record, ensure_ascii=False), mode="all")

    job, _ = default_set.ensure_default_set()
    run = ActivationRun.objects.get(pk=job.params["run_id"])
    # A worker killed while writing a shard leaves arrays without their .json: they are dropped.
    shard_dir = services.run_dir(run) / "shards"
    shard_dir.mkdir(parents=True)
    np.save(shard_dir / "00000_L2.npy", np.zeros((3, 640), np.float16))

    stages = []  # (stage, layer) in the order the links started them

    def recorded(name, real):
        def call(sae, *args, **kwargs):
            stages.append((name, sae.layer))
            return real(sae, *args, **kwargs)

        return call

    for name in ("train_sae", "score_sae", "explain_sae"):
        monkeypatch.setattr(pipeline, name, recorded(name, getattr(pipeline, name)))

    links = []
    while job is not None:
        links.append(job.pk)
        assert len(links) < 40
        run_job(job.pk, lambda j: default_set.run_default_set(j, backend=gemma))
        job = Job.objects.get(pk=job.pk)
        assert job.status == JobStatus.SUCCEEDED, job.error
        following = job.result.get("continued_in_job")
        job = Job.objects.get(pk=following) if following else None
    assert len(links) > 5  # it did stop and resume
    # The first job and each link's successor were queued once, after their commits.
    assert links_kept_here == [(default_set.KIND, pk) for pk in links]
    assert {name for name, *_ in stages} == {"train_sae", "score_sae", "explain_sae"}
    # Each SAE is trained, then scored, then explained (beside the next SAE's training: the
    # test below); the next SAE is trained after this one is scored.
    for layer in default_set.LAYERS:
        mine = [name for name, at in stages if at == layer]
        assert mine == sorted(mine, key=["train_sae", "score_sae", "explain_sae"].index), mine
    assert stages.index(("train_sae", 4)) > max(i for i, stage in enumerate(stages) if stage == ("score_sae", 2))

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETE
    assert not shard_dir.exists()
    acts, tokens = pipeline.load_run_arrays(run, 4)
    assert len(acts) == run.n_tokens == len(tokens["tokens"])
    assert len(tokens["texts"]) == len(run.corpus.texts)
    assert tokens["doc"] == sorted(tokens["doc"])  # shards joined in order
    # The same texts through the model in one go give the same activations at the end.
    last = tokens["texts"][-1]
    reference = gemma.activations([last], [4])[0]["layers"][4][1:]
    mine = acts[-len(reference) :].astype(np.float32)
    assert np.allclose(mine, reference.astype(np.float32), atol=0.05, rtol=0.02)

    for sae in SAE.objects.filter(run=run):
        assert sae.status == RunStatus.COMPLETE
        assert sae.scored
        assert sae.steps_done == sae.steps_total
        assert FeatureScore.objects.filter(sae=sae, rank=0).count() == LinguisticFeature.objects.count()
        assert Latent.objects.filter(sae=sae).exclude(explanation="").count() == 1
        assert {"score_seconds", "explain_seconds"} <= set(sae.metrics)
        # Scoring was stopped by the end of its link after the feature: that link's time counts.
        assert sae.metrics["score_seconds"] > 0.5
    assert default_set.status() is None
    page = client_for(researcher).get("/lingualens/").content.decode()
    assert 'id="default-set"' not in page
    assert "default-l2-w128-k8" in page


@pytest.mark.model
def test_a_cancelled_link_keeps_its_checkpoint(researcher, lens_dir, gemma, monkeypatch):
    monkeypatch.setattr(default_set, "LAYERS", (2, 3, 4))
    monkeypatch.setattr(default_set, "WIDTH", 64)
    monkeypatch.setattr(default_set, "K", 4)
    monkeypatch.setattr(default_set, "CORPUS_TOKENS", 3000)
    monkeypatch.setattr(default_set, "TRAINING_TOKENS", 512 * 60)
    monkeypatch.setattr(default_set, "CORPUS_NAME", "tiny default set")
    monkeypatch.setattr(default_set, "corpus_head", lambda: services.ensure_default_corpus().texts[:10])
    job, _ = default_set.ensure_default_set()
    calls, curves = [], []

    def stop_in_training(j):
        from apps.jobs import services as job_services

        real = job_services.report_progress

        def report(job, fraction, message=""):
            real(job, fraction, message)
            calls.append(message)
            if message.startswith("SAE step 25/"):  # the SAE page draws the loss while training runs
                curves.append(SAE.objects.get(pk=j.params["sae_ids"][0]).loss_curve)
            if message.startswith("SAE step 50"):
                raise JobCancelled

        monkeypatch.setattr(job_services, "report_progress", report)
        return default_set.run_default_set(j, backend=gemma)

    run_job(job.pk, stop_in_training)
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    run = ActivationRun.objects.get(pk=job.params["run_id"])
    assert run.status == RunStatus.COMPLETE  # collected once, for all three layers
    first = SAE.objects.get(run=run, layer=2)
    assert first.status == RunStatus.PARTIAL
    assert first.steps_done == 50
    assert [point[0] for point in curves[0]] == list(range(1, 26))
    assert (services.sae_dir(first) / "checkpoint.pt").exists()
