"""API tokens for scripts: the first one from a username and password (HTTP Basic, throttled
like the log-in page), then list and revoke with the token itself."""

import base64

import pytest
from django.test import Client

from apps.accounts import throttle
from apps.accounts.models import ApiToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ADDRESS = "203.0.113.7"


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.LOGIN_FAILURE_LIMIT_PER_ACCOUNT = 3
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 50
    yield
    throttle.clear(throttle.ADDRESS, ADDRESS)
    throttle.clear(throttle.TOKEN_ADDRESS, ADDRESS)
    for name in ("scripter", "locked", "gone"):
        throttle.clear(throttle.ACCOUNT, name)


def basic(username: str, password: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def new_token(client, username, password, name="laptop"):
    return client.post(
        "/api/tokens", {"name": name}, content_type="application/json", REMOTE_ADDR=ADDRESS, **basic(username, password)
    )


def test_first_token_from_password_then_list_and_revoke(client, password):
    user = UserFactory(username="scripter", role="researcher")
    created = new_token(client, "scripter", password)
    assert created.status_code == 201, created.content
    body = created.json()
    raw = body["token"]
    assert raw.startswith("atr_")
    assert body["name"] == "laptop"
    assert raw.startswith(body["prefix"])
    stored = ApiToken.objects.get(user=user)
    assert raw not in (stored.key_hash, stored.prefix)  # only the hash is kept

    # The token works on the rest of the API, and can make a second token without the password.
    second = client.post("/api/tokens", {"name": "ci"}, content_type="application/json", **bearer(raw))
    assert second.status_code == 201
    listed = client.get("/api/tokens", **bearer(raw)).json()
    assert {t["name"] for t in listed} == {"laptop", "ci"}
    assert all("token" not in t for t in listed)  # raw values are never shown again
    assert client.get("/api/lingualens/corpora", **bearer(raw)).status_code == 200

    # Revoke the second, then the token in use: after that it is refused.
    assert client.delete(f"/api/tokens/{second.json()['id']}", **bearer(raw)).status_code == 204
    assert client.delete(f"/api/tokens/{body['id']}", **bearer(raw)).status_code == 204
    assert client.get("/api/tokens", **bearer(raw), REMOTE_ADDR=ADDRESS).status_code == 401
    assert not ApiToken.objects.filter(user=user).exists()


def test_wrong_password_is_401_and_repeated_failures_lock_the_account(client, password):
    UserFactory(username="locked")
    for _ in range(3):
        wrong = new_token(client, "locked", "not-the-password")
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "Wrong username or password."
    # Locked before the password is checked: the right one is refused too, with the wait.
    locked = new_token(client, "locked", password)
    assert locked.status_code == 429
    assert "Try again in" in locked.json()["detail"]
    assert not ApiToken.objects.exists()


def test_inactive_account_gets_no_token(client, password):
    UserFactory(username="gone", is_active=False)
    assert new_token(client, "gone", password).status_code == 401


def test_no_credentials_is_401(client):
    assert client.post("/api/tokens", {}, content_type="application/json").status_code == 401
    assert client.get("/api/tokens").status_code == 401


def test_tokens_are_private(client_for, password):
    alice = UserFactory(username="alice2")
    bob = UserFactory(username="bob2")
    bobs = client_for(bob)
    from apps.accounts.services import create_api_token

    alices_token, _raw = create_api_token(alice, "alice's")
    assert bobs.get("/api/tokens").json() == []
    assert bobs.delete(f"/api/tokens/{alices_token.pk}").status_code == 404
    assert ApiToken.objects.filter(pk=alices_token.pk).exists()


def test_session_needs_csrf_to_make_a_token(password):
    user = UserFactory(username="csrf-user")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/api/tokens", {"name": "x"}, content_type="application/json").status_code == 403
    assert not ApiToken.objects.filter(user=user).exists()


def test_the_route_is_documented(client):
    schema = client.get("/api/openapi.json").json()
    assert {"post", "get"} <= set(schema["paths"]["/api/tokens"])
    assert "delete" in schema["paths"]["/api/tokens/{token_id}"]
    assert any(s.get("scheme") == "basic" for s in schema["components"]["securitySchemes"].values())
