"""Explanations for latents by the assistant model, scored by detection on held-out snippets
against another latent's explanation; shown on the latent and SAE pages and searchable."""

import pytest

from apps.jobs.models import Job
from apps.jobs.services import run_job
from apps.lingualens import explain, pipeline, services
from apps.lingualens.models import Latent
from tests.lingualens.test_views_api import stored_sae  # noqa: F401  (a fixture)


def context(tokens, acts):
    return {"tokens": tokens, "acts": acts, "focus": acts.index(max(acts)), "max": max(acts)}


def test_explanations_are_cleaned_model_output():
    assert explain.clean_explanation("\n  The feature responds to: passive voice\nmore") == "passive voice"
    assert explain.clean_explanation('"把 construction"\x07') == "把 construction"
    assert len(explain.clean_explanation("x" * 1000)) == explain.MAX_EXPLANATION
    assert explain.clean_explanation("   \n ") == ""


def test_detection_is_balanced_accuracy():
    labels = [True, False, True, False]
    assert explain.balanced_accuracy({1, 3}, labels) == 1.0
    assert explain.balanced_accuracy({1, 2, 3, 4}, labels) == 0.5  # picking everything is chance
    assert explain.balanced_accuracy(set(), labels) == 0.5
    assert explain.balanced_accuracy({2, 4}, labels) == 0.0


def test_held_out_snippets_are_not_the_ones_shown():
    top = [context([f"t{i}", " door", " was"], [0, 2.0 - i / 10, 0]) for i in range(9)]
    quantile = [context(["q", " x"], [0.3, 0])]
    latent = Latent(top_contexts=top, quantile_examples=[{"range": [0, 1], "examples": [top[0], *quantile]}])
    held = explain.held_out_firing(latent)
    assert held == top[explain.SHOWN :] + quantile
    prompt = explain.explanation_messages(latent)[1]["content"]
    assert "t0[[ door]] was" in prompt
    assert "t8" not in prompt  # held out


@pytest.mark.django_db
def test_explanation_shows_on_pages_and_is_searchable(client_for, researcher, stored_sae):  # noqa: F811
    Latent.objects.filter(sae=stored_sae, index=3).update(
        explanation="passive <b>voice</b> auxiliaries", explanation_score=0.875, explanation_detail={"control": 0.5}
    )
    client = client_for(researcher)
    page = client.get(f"/lingualens/features/{stored_sae.feature_id(3)}/").content.decode()
    assert "passive &lt;b&gt;voice&lt;/b&gt; auxiliaries" in page  # model output is escaped
    assert "detection 0.88" in page
    assert "another latent's explanation: 0.50" in page  # (a translation is not escaped: our own text)
    sae_page = client.get(f"/lingualens/saes/{stored_sae.slug}/").content.decode()
    assert "passive &lt;b&gt;voice" in sae_page
    found = client.get("/lingualens/search/?q=auxiliaries").content.decode()
    assert stored_sae.feature_id(3) in found


@pytest.mark.model
@pytest.mark.django_db
def test_explain_job_with_the_assistant_model(tiny_sae, researcher, assistant_server, client_for):
    job = services.start_explaining(researcher, tiny_sae, limit=3)
    assert job.queue == "batch"
    run_job(job.pk, pipeline.explain_job)
    job = Job.objects.get(pk=job.pk)
    assert job.status == "succeeded", job.error
    assert job.result["explained"] == 3
    explained = list(Latent.objects.filter(sae=tiny_sae).exclude(explanation=""))
    assert len(explained) == 3
    for latent in explained:
        assert 0 < len(latent.explanation) <= explain.MAX_EXPLANATION
        assert "\n" not in latent.explanation
        if latent.explanation_score is not None:
            assert 0 <= latent.explanation_score <= 1
            assert latent.explanation_detail["firing"] > 0
            assert latent.explanation_detail["silent"] > 0
    page = client_for(researcher).get(f"/lingualens/saes/{tiny_sae.slug}/").content.decode()
    assert "3 latents explained" in page
