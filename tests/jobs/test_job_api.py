from apps.accounts.services import create_api_token
from apps.jobs.models import Job


def test_get_own_job_with_session(client_for, student):
    job = Job.objects.create(owner=student, kind="count", queue="cpu", params={"n": 2})
    response = client_for(student).get(f"/api/jobs/{job.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == job.pk
    assert body["status"] == "queued"
    assert body["queue_position"] == 1


def test_another_users_job_is_404(client_for, student, teacher):
    job = Job.objects.create(owner=student, kind="count", queue="cpu")
    assert client_for(teacher).get(f"/api/jobs/{job.pk}").status_code == 404


def test_bearer_token_auth(client, student):
    job = Job.objects.create(owner=student, kind="count", queue="cpu")
    _token, raw = create_api_token(student, "script")
    assert client.get(f"/api/jobs/{job.pk}", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    assert client.get(f"/api/jobs/{job.pk}", headers={"Authorization": "Bearer atr_wrong"}).status_code == 401
    assert client.get(f"/api/jobs/{job.pk}").status_code == 401


def test_start_count_job_validates(client, student):
    _token, raw = create_api_token(student, "script")
    headers = {"Authorization": f"Bearer {raw}"}
    response = client.post("/api/jobs/count", {"n": 5000}, content_type="application/json", headers=headers)
    assert response.status_code == 422
    assert "between 1 and 1000" in response.json()["detail"]
    response = client.post("/api/jobs/count", {"n": 3, "delay": 0}, content_type="application/json", headers=headers)
    assert response.status_code == 201
    assert Job.objects.get(pk=response.json()["id"]).owner == student


def test_openapi_docs_are_served(client):
    assert client.get("/api/docs").status_code == 200
    assert "/api/jobs/{job_id}" in client.get("/api/openapi.json").json()["paths"]


def test_session_post_requires_csrf(student):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    response = client.post("/api/jobs/count", {"n": 3}, content_type="application/json")
    assert response.status_code in (401, 403)
