"""Pages and API: permissions (researchers and admins only), the feature page at its stable URL,
catalogue editing with bad input, starting jobs, and the API's CRUD and import."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from apps.lingualens import services
from apps.lingualens.models import (
    SAE,
    ActivationRun,
    Corpus,
    FeatureScore,
    Latent,
    LinguisticFeature,
    RunStatus,
    SteeringRun,
)
from apps.lingualens.pair_split import split_pairs

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_sae(researcher, catalogue, lens_dir):
    """An SAE row with latent statistics as the pipeline stores them (no model needed to show pages)."""
    corpus = services.ensure_default_corpus()
    run = ActivationRun.objects.create(owner=researcher, corpus=corpus, layers=[6], status=RunStatus.COMPLETE)
    sae = SAE.objects.create(
        owner=researcher,
        run=run,
        slug="l6-w16-k4",
        layer=6,
        width=16,
        k=4,
        status=RunStatus.COMPLETE,
        metrics={"l0": 4.0, "explained_variance": 0.8, "dead_share": 0.1, "ce_recovered": 0.9},
    )
    context = {
        "tokens": ["The", " door", " was", " painted", " by", " Tom", "<script>"],
        "acts": [0, 0, 1.5, 3.0, 0.5, 0, 0],
        "focus": 3,
        "max": 3.0,
    }
    Latent.objects.create(
        sae=sae,
        index=3,
        density=0.01,
        max_activation=3.0,
        mean_activation=1.2,
        histogram={"edges": [0, 1, 2, 3], "counts": [2, 1, 1]},
        top_contexts=[context],
        quantile_examples=[{"range": [1, 3], "examples": [context]}],
        promoted=[[" painted", 2.5]],
        suppressed=[[" paint", -1.0]],
        neighbours=[[5, 0.4]],
    )
    passive = LinguisticFeature.objects.get(name="Passive voice")
    FeatureScore.objects.create(
        sae=sae, feature=passive, latent_index=3, layer=6, rank=0, ps=0.9, pn=0.8, frc=2 * 0.72 / 1.7, fic=0.75
    )
    services.sae_dir(sae).mkdir(parents=True)
    (services.sae_dir(sae) / "cfg.json").write_text("{}")
    return sae


PAGES = [
    "/lingualens/",
    "/lingualens/catalogue/",
    "/lingualens/search/",
    "/lingualens/steer/",
    "/lingualens/features/gemma3-270m@l6-w16-k4:3/",
    "/lingualens/saes/l6-w16-k4/",
    "/lingualens/overview.svg",
]


@pytest.mark.parametrize("path", PAGES)
def test_students_and_teachers_get_403(client_for, student, teacher, stored_sae, path):
    assert client_for(student).get(path).status_code == 403
    assert client_for(teacher).get(path).status_code == 403


def test_anonymous_is_sent_to_login(client):
    assert client.get("/lingualens/").status_code == 302


def test_api_refuses_students(client_for, student, stored_sae):
    client = client_for(student)
    assert client.get("/api/lingualens/catalogue/features").status_code == 403
    assert (
        client.post(
            "/api/lingualens/search", {"sae": "l6-w16-k4", "sentence": "x"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert client.get("/api/lingualens/latents/gemma3-270m@l6-w16-k4:3").status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_for_researchers_and_admins(client_for, researcher, admin_user, stored_sae, path):
    assert client_for(researcher).get(path).status_code == 200
    assert client_for(admin_user).get(path).status_code == 200


def test_feature_page_at_stable_url(client_for, researcher, stored_sae):
    page = client_for(researcher).get("/lingualens/features/gemma3-270m@l6-w16-k4:3/").content.decode()
    assert "gemma3-270m@l6-w16-k4:3" in page
    assert 'class="ll-tok focus" style="--a: 1.0"' in page
    assert " painted" in page
    assert "&lt;script&gt;" in page
    assert "<script>" not in page.split("<main")[1]
    assert "Passive voice" in page
    assert "histogram.svg" in page
    assert "(1% of tokens)" in page
    Latent.objects.filter(sae=stored_sae, index=3).update(density=0.00033)  # rare: not "0%"
    rare = client_for(researcher).get("/lingualens/features/gemma3-270m@l6-w16-k4:3/").content.decode()
    assert "(0.033% of tokens)" in rare
    svg = client_for(researcher).get("/lingualens/features/gemma3-270m@l6-w16-k4:3/histogram.svg")
    assert svg["Content-Type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    client = client_for(researcher)
    assert client.get("/lingualens/features/gemma3-270m@l6-w16-k4:99/").status_code == 404
    assert client.get("/lingualens/features/not-an-id/").status_code == 404


def test_note_is_saved_and_searchable(client_for, researcher, stored_sae):
    client = client_for(researcher)
    client.post("/lingualens/features/gemma3-270m@l6-w16-k4:3/", {"note": "passive auxiliary was + participle"})
    assert Latent.objects.get(sae=stored_sae, index=3).note.startswith("passive auxiliary")
    page = client.get("/lingualens/search/?q=auxiliary").content.decode()
    assert "gemma3-270m@l6-w16-k4:3" in page
    found = client.get("/api/lingualens/search/notes?q=auxiliary").json()
    assert found["latents"][0]["id"] == "gemma3-270m@l6-w16-k4:3"


def test_linguistic_feature_page_cross_lingual_and_bad_pair(client_for, researcher, stored_sae):
    client = client_for(researcher)
    passive = LinguisticFeature.objects.get(name="Passive voice")
    page = client.get(f"/lingualens/catalogue/{passive.pk}/").content.decode()
    assert "把 construction" in page
    assert "Syntax in Chinese" in page
    assert "<mark>was" in page
    assert client.get(f"/lingualens/catalogue/{passive.pk}/layers.svg").status_code == 200
    response = client.post(
        f"/lingualens/catalogue/{passive.pk}/",
        {"sentence": "The cake was eaten.", "counterfactual": "They ate the cake.", "span": "by"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "does not occur in the sentence" in body
    assert 'value="The cake was eaten."' in body
    client.post(
        f"/lingualens/catalogue/{passive.pk}/",
        {"sentence": "The cake was eaten.", "counterfactual": "They ate the cake.", "span": "was eaten"},
    )
    assert passive.pairs.filter(sentence="The cake was eaten.").exists()


def test_feature_page_says_which_pairs_are_held_out(client_for, researcher, stored_sae):
    """The page says how scoring splits this feature's pairs and marks each pair's half; after a pair
    is added the stored scores no longer match the halves, and the page says so."""
    client = client_for(researcher)
    passive = LinguisticFeature.objects.get(name="Passive voice")
    selection, held_out = split_pairs(list(passive.pairs.all()))
    page = client.get(f"/lingualens/catalogue/{passive.pk}/").content.decode()
    spans = len({p.span for p in held_out})
    assert f"scored on {spans} other spans ({len(held_out)} pairs)" in page
    assert page.count('class="pair-held_out"') == len(held_out)
    assert page.count('class="pair-selection"') == len(selection)
    assert "score the SAE again" not in page
    marker = LinguisticFeature.objects.get(name="Question particle 吗")
    page = client.get(f"/lingualens/catalogue/{marker.pk}/").content.decode()
    assert "this feature has 1 marked span, too few to hold whole spans out" in page
    FeatureScore.objects.filter(feature=passive).update(n_select=len(selection), n_heldout=len(held_out))
    assert "score the SAE again" not in client.get(f"/lingualens/catalogue/{passive.pk}/").content.decode()
    client.post(
        f"/lingualens/catalogue/{passive.pk}/",
        {"sentence": "The kite was flown by Zoe.", "counterfactual": "Zoe flew the kite.", "span": "was flown by"},
    )
    assert "score the SAE again" in client.get(f"/lingualens/catalogue/{passive.pk}/").content.decode()


def test_catalogue_import_view_and_export(client_for, researcher, catalogue):
    client = client_for(researcher)
    bad = b'{"language": "en", "dimension": "syntax", "name": "New one"}\n{broken\n'
    response = client.post(
        "/lingualens/catalogue/import/", {"file": SimpleUploadedFile("c.jsonl", bad), "mode": "all"}, follow=True
    )
    text = response.content.decode()
    assert "Nothing imported" in text
    assert "Line 2: not valid JSON" in text
    assert not LinguisticFeature.objects.filter(name="New one").exists()
    client.post("/lingualens/catalogue/import/", {"file": SimpleUploadedFile("c.jsonl", bad), "mode": "keep"})
    assert LinguisticFeature.objects.filter(name="New one").exists()
    response = client.post(
        "/lingualens/catalogue/import/",
        {"file": SimpleUploadedFile("c.jsonl", "名".encode("gbk")), "mode": "keep"},
        follow=True,
    )
    assert "is not UTF-8 text" in response.content.decode()
    exported = client.get("/lingualens/catalogue/export.jsonl").content.decode().splitlines()
    assert len(exported) == LinguisticFeature.objects.count()
    client.post("/lingualens/catalogue/", {"language": "zh", "dimension": "syntax", "name": "连动句"})
    assert LinguisticFeature.objects.filter(name="连动句", language="zh").exists()


def test_corpus_upload_view(client_for, researcher, catalogue):
    client = client_for(researcher)
    response = client.post(
        "/lingualens/corpora/upload/", {"file": SimpleUploadedFile("bad.txt", "中文".encode("gbk"))}, follow=True
    )
    assert "is not UTF-8 text" in response.content.decode()
    client.post(
        "/lingualens/corpora/upload/",
        {"file": SimpleUploadedFile("ok.txt", "One.\n二。\n".encode()), "source": "my notes"},
    )
    assert Corpus.objects.get(source="my notes").texts == ["One.", "二。"]
    big = io.BytesIO(b"x" * (services.MAX_CORPUS_BYTES + 100))
    big.name = "big.txt"
    response = client.post("/lingualens/corpora/upload/", {"file": big}, follow=True)
    assert "the limit is" in response.content.decode()


def test_train_search_steer_views_start_gpu_jobs(client_for, researcher, stored_sae):
    client = client_for(researcher)
    corpus = Corpus.objects.get(is_default=True)
    response = client.post(
        "/lingualens/train/", {"corpus": corpus.pk, "layer": 4, "width": 64, "k": 8, "training_tokens": 5000}
    )
    sae = SAE.objects.get(layer=4)
    assert response.url == f"/lingualens/saes/{sae.slug}/"
    assert sae.job.queue == "batch"
    assert sae.job.kind == "lingualens.train"
    response = client.post("/lingualens/train/", {"corpus": corpus.pk, "layer": 4, "width": 64, "k": 64}, follow=True)
    assert "k must be smaller than the width" in response.content.decode()

    response = client.post("/lingualens/search/", {"sae": stored_sae.pk, "sentence": "The door was painted."})
    job = Job.objects.get(kind="lingualens.search")
    assert response.url == f"/lingualens/search/?job={job.pk}"
    assert 'hx-trigger="load delay:700ms"' in client.get(f"/lingualens/search/{job.pk}/result/").content.decode()
    job.status, job.result = "succeeded", {"sae": stored_sae.slug, "tokens": [{"token": "The", "latents": [[3, 1.5]]}]}
    job.save()
    result = client.get(f"/lingualens/search/{job.pk}/result/").content.decode()
    assert "/lingualens/features/gemma3-270m@l6-w16-k4:3/" in result
    assert "hx-trigger" not in result
    assert 'title="Passive voice"' in result  # latent 3 is the best latent of a linguistic feature
    assert client.post("/lingualens/search/", {"sae": stored_sae.pk, "sentence": " "}).status_code == 400

    response = client.post(
        "/lingualens/steer/", {"sae": stored_sae.pk, "prompt": "Hi", "interventions": "3:10, 5:set=0"}
    )
    run = SteeringRun.objects.get()
    assert response.url == f"/lingualens/steer/{run.job_id}/"
    assert run.interventions == [
        {"index": 3, "strength": 10.0, "mode": "add", "scale": 3.0},  # its top context peaks at 3.0
        {"index": 5, "strength": 0.0, "mode": "set", "scale": None},  # no statistics: ablating needs none
    ]
    page = client.get(response.url).content.decode()
    assert f'ws-connect="/ws/lingualens/steering/{run.job_id}/"' in page
    bad = client.post("/lingualens/steer/", {"sae": stored_sae.pk, "prompt": "Hi", "interventions": "99:10"})
    assert bad.status_code == 400
    assert "out of range" in bad.content.decode()


def test_other_researchers_cannot_see_my_search(client_for, researcher, stored_sae):
    from tests.factories import UserFactory

    job = services.start_search(researcher, stored_sae, "hello")
    other = client_for(UserFactory(username="other", role="researcher"))
    assert other.get(f"/lingualens/search/{job.pk}/result/").status_code == 404


def test_api_catalogue_crud_and_import(client_for, researcher, catalogue):
    client = client_for(researcher)
    features = client.get("/api/lingualens/catalogue/features?language=zh").json()
    assert len(features) >= 24
    assert all(f["language"] == "zh" for f in features)
    created = client.post(
        "/api/lingualens/catalogue/features",
        {
            "language": "en",
            "dimension": "morphology",
            "name": "Possessive 's",
            "pairs": [{"sentence": "Tom's car is red.", "counterfactual": "The car is red.", "span": "Tom's"}],
        },
        content_type="application/json",
    )
    assert created.status_code == 201
    feature_id = created.json()["id"]
    bad = client.post(
        f"/api/lingualens/catalogue/features/{feature_id}/pairs",
        {"sentence": "Ann's hat.", "counterfactual": "A hat.", "span": "Bob"},
        content_type="application/json",
    )
    assert bad.status_code == 422
    assert "does not occur" in bad.json()["detail"]
    assert (
        client.patch(
            f"/api/lingualens/catalogue/features/{feature_id}",
            {"description": "genitive"},
            content_type="application/json",
        ).json()["description"]
        == "genitive"
    )
    assert len(client.get(f"/api/lingualens/catalogue/features/{feature_id}").json()["pairs"]) == 1
    report = client.post(
        "/api/lingualens/catalogue/import",
        {"file": SimpleUploadedFile("x.jsonl", b'{"language": "en"}\n'), "mode": "keep"},
    ).json()
    assert (
        report["errors"][0]["line"] == 1
        and "dimension" in report["errors"][0]["reason"]
        or "name" in report["errors"][0]["reason"]
    )
    exported = client.get("/api/lingualens/catalogue/export?language=en").content.decode().splitlines()
    assert any(json.loads(line)["name"] == "Possessive 's" for line in exported)
    assert client.delete(f"/api/lingualens/catalogue/features/{feature_id}").status_code == 204


def test_api_saes_latents_search_steer(client_for, researcher, stored_sae):
    client = client_for(researcher)
    assert client.get("/api/lingualens/saes").json()[0]["metrics"]["ce_recovered"] == 0.9
    data = client.get("/api/lingualens/latents/gemma3-270m@l6-w16-k4:3").json()
    assert data["top_contexts"][0]["max"] == 3.0
    assert data["linguistic_features"][0]["feature"] == "Passive voice"
    started = client.post(
        "/api/lingualens/saes",
        {"layer": 2, "width": 64, "k": 8, "training_tokens": 5000},
        content_type="application/json",
    )
    assert started.status_code == 202
    assert started.json()["status"] == "pending"
    assert (
        client.post(
            "/api/lingualens/saes", {"layer": 2, "width": 64, "k": 8, "model": "nope"}, content_type="application/json"
        ).status_code
        == 422
    )
    search = client.post(
        "/api/lingualens/search", {"sae": "l6-w16-k4", "sentence": "Hello"}, content_type="application/json"
    )
    assert search.status_code == 202
    assert client.get(f"/api/jobs/{search.json()['job_id']}").json()["kind"] == "lingualens.search"
    steer = client.post(
        "/api/lingualens/steer",
        {"sae": "l6-w16-k4", "prompt": "Hi", "interventions": [{"index": 3}]},
        content_type="application/json",
    )
    assert steer.status_code == 202
    assert client.get(f"/api/lingualens/steer/{steer.json()['job_id']}").json()["interventions"][0]["strength"] == 2
    score = client.post("/api/lingualens/saes/l6-w16-k4/score", {"feature_ids": [1]}, content_type="application/json")
    assert score.status_code == 202


def test_sae_page_polls_while_training_and_reloads_when_done(client_for, researcher, stored_sae):
    client = client_for(researcher)
    job = Job.objects.create(owner=researcher, kind="lingualens.train", queue="gpu", status="running")
    SAE.objects.filter(pk=stored_sae.pk).update(job=job)
    assert "/lingualens/saes/l6-w16-k4/refresh/" in client.get("/lingualens/saes/l6-w16-k4/").content.decode()
    assert client.get("/lingualens/saes/l6-w16-k4/refresh/").status_code == 204
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    response = client.get("/lingualens/saes/l6-w16-k4/refresh/")
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"
    assert "/refresh/" not in client.get("/lingualens/saes/l6-w16-k4/").content.decode()


def test_sae_whose_worker_died_offers_resume(client_for, researcher, stored_sae, django_capture_on_commit_callbacks):
    job = Job.objects.create(
        owner=researcher,
        kind="lingualens.train",
        queue="gpu",
        status="failed",
        error="The worker stopped responding; the job was stopped. Try again.",
    )
    SAE.objects.filter(pk=stored_sae.pk).update(job=job, status="running", steps_done=30, steps_total=100)
    client = client_for(researcher)
    page = client.get("/lingualens/saes/l6-w16-k4/").content.decode()
    assert 'id="stalled-note"' in page
    assert "after 30 of 100 steps" in page
    client.post("/lingualens/saes/l6-w16-k4/resume/")
    sae = SAE.objects.get(pk=stored_sae.pk)
    assert sae.status == "pending"
    assert sae.steps_done == 30
    assert sae.job.kind == "lingualens.train"
    assert sae.job_id != job.pk


def test_layer_past_the_models_last_is_refused(client_for, researcher, gemma):
    """Gemma-3-270m has 18 decoder layers, read from the prepared model's config (the `gemma`
    fixture prepares it)."""
    services.ensure_default_corpus()
    past_the_end = client_for(researcher).post(
        "/api/lingualens/saes", {"layer": 18, "width": 64, "k": 8}, content_type="application/json"
    )
    assert past_the_end.status_code == 422
    assert "between 0 and 17" in past_the_end.json()["detail"]
    assert services.model_dims("gemma3-270m") == (18, 640)


def test_best_latent_per_layer_is_the_one_chosen_on_the_selection_pairs(stored_sae):
    """The feature page once showed the rank-3 latent because it happened to score best on the
    held-out pairs (picking on them again, and with no FIC); the chosen latent is rank 0."""
    from apps.lingualens import summaries

    passive = LinguisticFeature.objects.get(name="Passive voice")
    chosen = passive.scores.get(sae=stored_sae, rank=0)
    FeatureScore.objects.create(
        sae=stored_sae, feature=passive, latent_index=99, layer=chosen.layer, rank=3, ps=1, pn=1, frc=1.0
    )
    [row] = summaries.best_layers(passive)
    assert row["latent"] == chosen.latent_index
    assert row["fic"] == chosen.fic
