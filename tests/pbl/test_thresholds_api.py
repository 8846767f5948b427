"""PUT /api/pbl/runs/{id}/thresholds: the body is JSON (it used to be read as a query
parameter, so every call was a 422)."""

import json

import pytest

from apps.accounts.services import create_api_token
from apps.pbl.orchestrator import DEFAULT_THRESHOLDS, thresholds_for

pytestmark = pytest.mark.django_db


def put(client, run, body, raw_token: str):
    return client.put(
        f"/api/pbl/runs/{run.pk}/thresholds",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_token}"},
    )


def test_teacher_sets_thresholds_by_json_body(client, run, teacher):
    _token, raw = create_api_token(teacher, "script")
    response = put(client, run, {"idle_minutes": 2, "dominant_share": 0.6}, raw)
    assert response.status_code == 200, response.content
    assert response.json()["idle_minutes"] == 2
    run.refresh_from_db()
    assert thresholds_for(run)["idle_minutes"] == 2
    assert thresholds_for(run)["dominant_share"] == 0.6
    # Unnamed thresholds take their defaults.
    assert thresholds_for(run)["window_minutes"] == DEFAULT_THRESHOLDS["window_minutes"]


def test_bad_values_are_refused_with_the_thresholds_name(client, run, teacher):
    _token, raw = create_api_token(teacher, "script")
    out_of_range = put(client, run, {"dominant_share": 3}, raw)
    assert out_of_range.status_code == 422  # bad input (apps/core/errors.py)
    assert "share of the writing" in out_of_range.json()["detail"]
    unknown = put(client, run, {"idle_minutez": 2}, raw)
    assert unknown.status_code == 422
    assert "idle_minutez" in json.dumps(unknown.json())
    not_a_number = put(client, run, {"idle_minutes": "soon"}, raw)
    assert not_a_number.status_code == 422
    run.refresh_from_db()
    assert run.thresholds == {}


def test_only_the_runs_teacher_sets_thresholds(client, run, other_teacher, learners):
    for user in (other_teacher, learners[0]):
        _token, raw = create_api_token(user, "script")
        assert put(client, run, {"idle_minutes": 1}, raw).status_code == 403
    run.refresh_from_db()
    assert run.thresholds == {}
