"""The default SAE set: one batch job chain queued on start, once; it resumes after a stopped
worker; it collects every layer in one forward pass, then trains, scores and explains one SAE
after another; the LinguaLens pages state the wait while it runs, and link each finished SAE."""

import json
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from apps.jobs.models import Job, JobStatus
from apps.jobs.services import JobCancelled, run_job
from apps.lingualens import default_corpus, default_set, pipeline, services
from apps.lingualens.models import SAE, ActivationRun, FeatureScore, Latent, LinguisticFeature, RunStatus

pytestmark = pytest.mark.django_db


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
    assert state["next_minutes"] < 0.5 * state["minutes_left"]
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
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert 'id="default-set"' not in client.get("/lingualens/").content.decode()


@pytest.mark.model
def test_the_chain_runs_in_links_and_resumes_from_disk(
    researcher, lens_dir, gemma, assistant_server, monkeypatch, client_for
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

    stages = []  # (stage, layer) in the order the links ran them

    def recorded(name, real):
        def call(sae, *args, **kwargs):
            stages.append((name, sae.layer))
            return real(sae, *args, **kwargs)

        return call

    for name in ("train_sae", "score_sae", "explain_sae"):
        monkeypatch.setattr(pipeline, name, recorded(name, getattr(pipeline, name)))

    links = 0
    while job is not None:
        links += 1
        assert links < 40
        run_job(job.pk, lambda j: default_set.run_default_set(j, backend=gemma))
        job = Job.objects.get(pk=job.pk)
        assert job.status == JobStatus.SUCCEEDED, job.error
        following = job.result.get("continued_in_job")
        job = Job.objects.get(pk=following) if following else None
    assert links > 5  # it did stop and resume
    # One SAE is finished (trained, scored, explained) before the next starts training.
    layers = [layer for _, layer in stages]
    assert layers == sorted(layers)
    assert {name for name, _ in stages} == {"train_sae", "score_sae", "explain_sae"}

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
