"""One error vocabulary under /api/: every error is JSON {"detail", ["errors"]} with the status
its kind means (apps/core/errors.py), whatever app raised it."""

import pytest

from apps.lingualens.models import LinguisticFeature


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    "path",
    ["/api/nothing-here", "/api", "/api/jobs/abc", "/api/kbqa/kbs/x/y/z", "/api/docs/missing"],
)
def test_unknown_paths_are_json_404(client_for, researcher, path):
    body = assert_json_error(client_for(researcher).get(path), 404)
    assert "/api/docs" in body["detail"]


def test_api_root_says_where_the_docs_are(client):
    body = client.get("/api/").json()
    assert body["docs"] == "/api/docs"
    assert client.get(body["openapi"]).status_code == 200


def test_trailing_slash_is_json_404_with_a_hint(client_for, researcher):
    body = assert_json_error(client_for(researcher).get("/api/lingualens/corpora/"), 404)
    assert "try /api/lingualens/corpora" in body["detail"]
    # Anonymous callers get the same JSON, never the HTML page.
    from django.test import Client

    assert_json_error(Client().post("/api/tokens/", {}, content_type="application/json"), 404)


def test_not_signed_in_is_401(client):
    assert_json_error(client.get("/api/lingualens/corpora"), 401)


def test_schema_validation_is_422_with_field_paths(client_for, researcher):
    response = client_for(researcher).post(
        "/api/lingualens/saes", {"layer": "six", "width": 64}, content_type="application/json"
    )
    body = assert_json_error(response, 422)
    assert any(e.startswith("body.data.layer: ") for e in body["errors"]), body
    nested = client_for(researcher).post(
        "/api/lingualens/steer",
        {"sae": "x", "prompt": "Hi", "interventions": [{"strength": 2}]},
        content_type="application/json",
    )
    assert "body.data.interventions[0].index: Field required" in assert_json_error(nested, 422)["errors"]


def test_service_validation_is_422_in_every_app(client_for, researcher, student, cohort):
    # LinguaLens' own input error class
    bad_pair = client_for(researcher).post(
        "/api/lingualens/catalogue/features",
        {
            "language": "en",
            "dimension": "syntax",
            "name": "x",
            "pairs": [{"sentence": "", "counterfactual": "", "span": ""}],
        },
        content_type="application/json",
    )
    assert "pair 1" in assert_json_error(bad_pair, 422)["detail"]
    # Django's ValidationError from an accounts action, through the PBL API
    bad_code = client_for(student).post("/api/pbl/join", {"code": "NOPE99"}, content_type="application/json")
    assert "NOPE99" in assert_json_error(bad_code, 422)["detail"]


def test_permission_is_403_with_the_reason(client_for, student):
    body = assert_json_error(client_for(student).get("/api/lingualens/corpora"), 403)
    assert body["detail"] == "Your role cannot use LinguaLens."
    assert_json_error(client_for(student).get("/api/models"), 403)


def test_missing_is_404(client_for, researcher):
    assert_json_error(client_for(researcher).get("/api/lingualens/catalogue/features/999999"), 404)
    assert_json_error(client_for(researcher).get("/api/jobs/999999"), 404)


def test_conflict_is_409(client_for, researcher):
    first = LinguisticFeature.objects.create(language="en", dimension="syntax", name="Passive", description="")
    second = LinguisticFeature.objects.create(language="en", dimension="syntax", name="Cleft", description="")
    response = client_for(researcher).patch(
        f"/api/lingualens/catalogue/features/{second.pk}", {"name": first.name}, content_type="application/json"
    )
    assert "already exists" in assert_json_error(response, 409)["detail"]
    empty = client_for(researcher).patch(
        f"/api/lingualens/catalogue/features/{second.pk}", {"name": "  "}, content_type="application/json"
    )
    assert_json_error(empty, 422)
    second.refresh_from_db()
    assert second.name == "Cleft"  # nothing lost on either refusal


def test_a_bug_is_a_logged_json_500_without_a_traceback(client_for, student, monkeypatch, caplog):
    from apps.jobs import api as jobs_api
    from apps.jobs.models import Job

    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")

    def broken(_job):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(jobs_api.services, "queue_position", broken)
    body = assert_json_error(client_for(student).get(f"/api/jobs/{job.pk}"), 500)
    assert "secret internals" not in body["detail"]
    assert "Traceback" not in body["detail"]
    assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
