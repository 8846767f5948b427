"""Each pipeline step on a tiny run with the real Gemma-3-270m: activations, SAE training and
metrics, latent statistics, feature scoring (PS/PN/FRC/FIC), search and steering."""

import json

import numpy as np
import pytest
import torch
from django.utils.html import escape

from apps.jobs.services import JobCancelled, cancel_job, run_job
from apps.lingualens import pipeline, services, steering
from apps.lingualens.models import ActivationRun, FeatureScore, Latent, LinguisticFeature, RunStatus
from apps.lingualens.pair_split import split_pairs
from apps.lingualens.sae import TopKSAE

pytestmark = [pytest.mark.model, pytest.mark.django_db]


def test_activation_run_stores_fp16_and_tokens(researcher, tiny_corpus, lens_dir, gemma):
    run = ActivationRun.objects.create(owner=researcher, corpus=tiny_corpus, layers=[2, 5], max_tokens_per_text=16)
    pipeline.collect_activations(run, gemma, lambda fraction, message: None)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETE
    assert run.d_model == 640
    acts, tokens = pipeline.load_run_arrays(run, 5)
    assert acts.dtype == np.float16
    assert acts.shape == (run.n_tokens, 640)
    assert len(tokens["tokens"]) == run.n_tokens == len(tokens["doc"])
    assert len(tokens["texts"]) == len(tiny_corpus.texts)
    # Compared with the backend's own activations (BOS left out here).
    reference = gemma.activations([tiny_corpus.texts[0]], [5])[0]["layers"][5][1:]
    n = min(len(reference), 15)
    assert np.allclose(acts[:n].astype(np.float32), reference[:n].astype(np.float32), atol=0.05, rtol=0.02)
    assert "".join(tokens["tokens"][:n]).strip() in tiny_corpus.texts[0]


def test_cancelled_activation_run_is_partial_and_resumes(researcher, tiny_corpus, lens_dir, gemma):
    run = ActivationRun.objects.create(owner=researcher, corpus=tiny_corpus, layers=[3], max_tokens_per_text=16)
    calls = []

    def cancel_after_first(fraction, message):
        calls.append(fraction)
        if len(calls) == 1:
            raise JobCancelled

    with pytest.raises(JobCancelled):
        pipeline.collect_activations(run, gemma, cancel_after_first)
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIAL
    assert run.n_texts_done == pipeline.BATCH
    partial_tokens = run.n_tokens
    pipeline.collect_activations(run, gemma, lambda f, m: None)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETE
    assert run.n_texts_done == len(tiny_corpus.texts)
    acts, tokens = pipeline.load_run_arrays(run, 3)
    assert len(acts) == run.n_tokens > partial_tokens
    assert len(tokens["texts"]) == len(tiny_corpus.texts)


def test_training_reports_metrics_and_saves_sae_lens_files(tiny_sae, lens_dir):
    metrics = tiny_sae.metrics
    assert tiny_sae.status == RunStatus.COMPLETE
    assert 0 < metrics["l0"] <= tiny_sae.k
    assert 0.2 < metrics["explained_variance"] <= 1
    assert 0 <= metrics["dead_share"] <= 1
    assert metrics["ce_ablated"] > metrics["ce_clean"]
    assert metrics["ce_recovered"] == pytest.approx(
        (metrics["ce_ablated"] - metrics["ce_sae"]) / (metrics["ce_ablated"] - metrics["ce_clean"])
    )
    assert metrics["ce_recovered"] > 0  # the SAE is far better than zero-ablating the layer
    folder = services.sae_dir(tiny_sae)
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["architecture"] == "topk"
    assert cfg["d_sae"] == 128
    assert cfg["hook_name"] == "model.layers.3"
    ours = TopKSAE.load(folder)
    assert ours.W_dec.shape == (128, 640)
    # The same files load in sae-lens and encode/decode identically there.
    import sae_lens

    theirs = sae_lens.SAE.load_from_disk(str(folder), device="cpu")
    assert theirs.cfg.metadata.hook_name == "model.layers.3"
    x = torch.randn(8, 640, generator=torch.Generator().manual_seed(0)) * 20
    torch.testing.assert_close(theirs.encode(x), ours.encode(x))
    # The same sums in another order: float32 rounding differs by ~1e-4 on a few of the 5,120
    # outputs (seen in CI); a wrong decoder would differ by whole units.
    torch.testing.assert_close(theirs.decode(theirs.encode(x)), ours(x), rtol=1e-3, atol=1e-3)
    assert tiny_sae.loss_curve[0][1] > tiny_sae.loss_curve[-1][1]  # the loss went down


def test_latent_statistics(tiny_sae):
    latents = Latent.objects.filter(sae=tiny_sae)
    assert latents.count() == 128
    live = latents.filter(density__gt=0).order_by("-density").first()
    assert live.top_contexts
    assert live.histogram["counts"]
    context = live.top_contexts[0]
    assert context["acts"][context["focus"]] == pytest.approx(live.max_activation, rel=1e-3)
    assert sum(live.histogram["counts"]) == round(live.density * tiny_sae.run.n_tokens)
    assert len(live.promoted) == 8
    assert len(live.suppressed) == 8
    assert live.promoted[0][1] >= live.promoted[-1][1]
    assert len(live.neighbours) == 5
    assert all(-1 <= c <= 1 for _i, c in live.neighbours)
    assert live.quantile_examples
    assert live.quantile_examples[0]["examples"]
    shown = [(tuple(c["tokens"]), c["focus"]) for c in live.top_contexts] + [
        (tuple(c["tokens"]), c["focus"]) for b in live.quantile_examples for c in b["examples"]
    ]
    assert len(shown) == len(set(shown))  # no context is shown twice on the feature page


def test_scoring_chooses_on_one_half_and_reports_on_the_other(tiny_sae, gemma):
    features = list(LinguisticFeature.objects.filter(name__in=["Passive voice", "把 construction"]))
    reports = []
    summary = pipeline.score_sae(
        tiny_sae,
        gemma,
        lambda fraction, text: reports.append((fraction, text)),
        [f.pk for f in features],
        max_pairs=16,
        fic_latents=1,
        fic_pairs=4,
        already=3,  # as a resumed chain: three features scored by an earlier link
    )
    assert set(summary) == {"Passive voice", "把 construction"}
    assert reports[-1][0] == 1.0
    assert reports[-1][1].startswith("Scored 5/5: ")
    for feature in features:
        scores = list(FeatureScore.objects.filter(sae=tiny_sae, feature=feature).order_by("rank"))
        assert scores, feature.name
        best = scores[0]
        # Split by marked word where the feature has several (passive: was painted, was fixed, ...).
        selection, held_out = split_pairs(list(feature.pairs.all()[:16]))
        assert (best.n_select, best.n_heldout) == (len(selection), len(held_out))
        assert min(best.n_select, best.n_heldout) >= 4
        # PS, PN and FRC are the held-out ones; FRC is their harmonic mean, inside its interval.
        assert best.frc == pytest.approx(2 * best.ps * best.pn / (best.ps + best.pn) if best.ps + best.pn else 0)
        assert best.frc_low <= best.frc <= best.frc_high
        assert best.frc_select >= scores[-1].frc_select  # ranked on the selection half
        assert best.frc_select > 0.5  # a latent on the tiny corpus separates the feature there
        assert best.floor_frc is not None
        assert 0 <= best.floor_frc <= 1
        assert best.fic is not None
        assert 0 <= best.fic <= 1
        assert best.fic_detail["pairs"] == 4
        assert best.fic_detail["controls"] == 4


def test_search_and_steering(tiny_sae, gemma, researcher, client_for, django_capture_on_commit_callbacks):
    result = pipeline.search_sentence(gemma, tiny_sae, "The door was painted by Tom. 门被汤姆漆了。")
    assert [row["token"] for row in result["tokens"]][:2] == ["The", " door"]
    assert all(row["token"].strip() for row in result["tokens"])  # the space before 门 shows as ␣, not a blank
    assert all(len(row["latents"]) <= 5 for row in result["tokens"])
    assert any(row["latents"] for row in result["tokens"])

    latent = Latent.objects.filter(sae=tiny_sae).order_by("-density").first().index
    # Strength in multiples of the latent's typical top activation (apps/lingualens/steering.py).
    run = steering.start_steering(
        researcher, tiny_sae, "The weather today is", f"{latent}:8", seed=3, max_tokens=8, temperature=0
    )
    run_job(run.job_id, lambda job: pipeline.run_steering(job, backend=gemma))
    run.refresh_from_db()
    out = {"plain": run.output_plain, "steered": run.output_steered}
    assert run.job.status == "succeeded"
    assert run.job.progress_message == f"With intervention: {len(out['steered'])} characters"  # the final count
    page = client_for(researcher).get(f"/lingualens/steer/{run.job_id}/").content.decode()
    assert "plain_characters" not in page  # the run's page shows the two texts, no counts
    assert 'id="job-result"' not in page
    assert escape(out["plain"]) in page
    assert escape(out["steered"]) in page
    assert out["plain"]
    assert out["steered"] != out["plain"]
    # Same seed, no intervention: the plain side is reproducible.
    again = steering.start_steering(
        researcher, tiny_sae, "The weather today is", f"{latent}:0", seed=3, max_tokens=8, temperature=0
    )
    pipeline.run_steering(again.job, backend=gemma)
    again.refresh_from_db()
    assert again.output_steered == out["plain"]


def test_cancelled_training_is_partial_and_resumes(
    researcher, tiny_corpus, lens_dir, gemma, django_capture_on_commit_callbacks
):
    from tests.lingualens.conftest import TINY

    sae = services.start_training(researcher, tiny_corpus, **{**TINY, "training_tokens": 51200})
    run = sae.run
    pipeline.collect_activations(run, gemma, lambda f, m: None)
    seen = []

    def cancel_midway(fraction, message):
        seen.append(fraction)
        if fraction >= 0.5:
            raise JobCancelled

    with pytest.raises(JobCancelled):
        pipeline.train_sae(sae, gemma, cancel_midway)
    sae.refresh_from_db()
    assert sae.status == RunStatus.PARTIAL
    assert 0 < sae.steps_done < sae.steps_total
    assert (services.sae_dir(sae) / "cfg.json").exists()  # partial weights usable
    done_before = sae.steps_done
    cancel_job(sae.job)  # what run_job does for the task when JobCancelled reaches it
    services.restart_training(researcher, sae, resume=True)
    pipeline.train_sae(sae, gemma, lambda f, m: None)
    sae.refresh_from_db()
    assert sae.status == RunStatus.COMPLETE
    assert sae.steps_done == sae.steps_total > done_before


def test_token_labels_show_split_bytes_and_whitespace(gemma):
    """Promoted tokens once showed "�" (one byte of a character that spans tokens) and empty
    chips (whitespace, zero-width and bidi characters); with Gemma's real vocabulary they read as
    their piece, as visible whitespace or as code points, and ordinary tokens as their text."""
    from apps.lingualens.latent_stats import token_label

    tokenizer = gemma.tokenizer
    byte = tokenizer.convert_tokens_to_ids("<0xE7>")
    assert tokenizer.decode([byte]) == "\ufffd"
    assert token_label(tokenizer, byte) == "<0xE7>"
    newline = tokenizer.encode("\n", add_special_tokens=False)
    assert token_label(tokenizer, newline[0]) == "↵"
    spaces = tokenizer.convert_tokens_to_ids("▁▁")
    assert token_label(tokenizer, spaces) == "␣␣"
    joiner = tokenizer.encode("\u200c", add_special_tokens=False)  # a zero-width non-joiner alone
    assert [token_label(tokenizer, t) for t in joiner] == ["U+200C"]
    word = tokenizer.encode(" painted", add_special_tokens=False)[0]
    assert token_label(tokenizer, word) == tokenizer.decode([word])
    assert "\ufffd" not in "".join(token_label(tokenizer, i) for i in range(256, 512))
