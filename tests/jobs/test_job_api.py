from apps.accounts.services import create_api_token
from apps.jobs.models import Job


def client_for_token(client, user):
    _token, raw = create_api_token(user, "script")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client


def test_get_own_job_with_session(client_for, student):
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu", params={"n": 2})
    response = client_for(student).get(f"/api/jobs/{job.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == job.pk
    assert body["status"] == "queued"
    assert body["queue_position"] == 1


def test_another_users_job_is_404(client_for, student, teacher):
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")
    assert client_for(teacher).get(f"/api/jobs/{job.pk}").status_code == 404


def test_bearer_token_auth(client, student):
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")
    _token, raw = create_api_token(student, "script")
    assert client.get(f"/api/jobs/{job.pk}", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    assert client.get(f"/api/jobs/{job.pk}", headers={"Authorization": "Bearer atr_wrong"}).status_code == 401
    assert client.get(f"/api/jobs/{job.pk}").status_code == 401


def test_the_demo_job_is_not_in_the_api(client, student):
    """Counting to N exercises the job machinery in tests; it is no product feature."""
    assert (
        client_for_token(client, student).post("/api/jobs/count", {"n": 3}, content_type="application/json").status_code
        == 404
    )
    assert "/api/jobs/count" not in client.get("/api/openapi.json").json()["paths"]


def test_cancel_with_a_token(client, student):
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu", params={"n": 2})
    response = client_for_token(client, student).post(f"/api/jobs/{job.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_openapi_docs_are_served(client):
    assert client.get("/api/docs").status_code == 200
    assert "/api/jobs/{job_id}" in client.get("/api/openapi.json").json()["paths"]


def test_session_post_requires_csrf(student):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")
    response = client.post(f"/api/jobs/{job.pk}/cancel")
    assert response.status_code in (401, 403)
    assert Job.objects.get(pk=job.pk).status == "queued"
