"""Failed log-ins are limited per account and per address (apps.accounts.throttle), with a
clear message, and admins can unlock; bad API tokens are limited per address too."""

import pytest
from django.core.management import call_command

from apps.accounts import throttle
from apps.accounts.services import create_api_token
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.LOGIN_FAILURE_LIMIT_PER_ACCOUNT = 3
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 5
    settings.TOKEN_FAILURE_LIMIT_PER_ADDRESS = 4
    settings.LOGIN_LOCKOUT_SECONDS = 600
    yield
    # Counters live in the shared test Redis: leave none behind for other tests.
    for addr in ("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"):
        throttle.clear(throttle.ADDRESS, addr)
        throttle.clear(throttle.TOKEN_ADDRESS, addr)
    for name in ("vic", "wendy", "xena"):
        throttle.clear(throttle.ACCOUNT, name)


def attempt(client, username, password, addr="198.51.100.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=addr)


def test_account_is_locked_after_repeated_failures_even_with_the_right_password(client, password):
    UserFactory(username="vic")
    for _ in range(3):
        assert attempt(client, "vic", "wrong-guess").status_code == 200
    # From another address: the account itself is locked, the right password does not help.
    locked = attempt(client, "vic", password, addr="198.51.100.2")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed log-in attempts for this account" in page
    assert "Try again in 10 minutes" in page
    assert "_auth_user_id" not in client.session
    # Other accounts are unaffected.
    UserFactory(username="wendy")
    assert attempt(client, "wendy", password, addr="198.51.100.2").status_code == 302


def test_admin_unlocks_with_the_management_command(client, password, capsys):
    UserFactory(username="vic")
    for _ in range(3):
        attempt(client, "vic", "nope")
    assert attempt(client, "vic", password, addr="198.51.100.2").status_code == 429
    call_command("unlock_logins", "vic")
    assert "unlocked (3 failed attempts forgotten)" in capsys.readouterr().out
    assert attempt(client, "vic", password, addr="198.51.100.2").status_code == 302


def test_admin_unlocks_from_the_user_admin(client, admin_user, password):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    vic = UserFactory(username="vic")
    for _ in range(3):
        attempt(client, "vic", "nope")
    client.force_login(admin_user)
    response = client.post(
        "/admin/accounts/user/", {"action": "unlock_login", "_selected_action": [vic.pk]}, follow=True
    )
    assert "Unlocked: vic." in response.content.decode()
    client.logout()
    assert attempt(client, "vic", password, addr="198.51.100.2").status_code == 302


def test_address_is_locked_after_failures_across_accounts(client, password):
    UserFactory(username="xena")
    for name in ("a1", "a2", "a3", "a4", "a5"):  # one failure each: no account reaches its limit
        attempt(client, name, "guess", addr="198.51.100.3")
    locked = attempt(client, "xena", password, addr="198.51.100.3")
    assert locked.status_code == 429
    assert "your network address" in locked.content.decode()
    assert attempt(client, "xena", password, addr="198.51.100.4").status_code == 302


def test_success_clears_the_accounts_count(client, password):
    UserFactory(username="vic")
    for _ in range(2):
        attempt(client, "vic", "nope")
    assert attempt(client, "vic", password).status_code == 302
    client.logout()
    for _ in range(2):
        attempt(client, "vic", "nope")
    assert attempt(client, "vic", password).status_code == 302  # 4 failures, never 3 in a row


def test_bad_bearer_tokens_are_limited_per_address(client, student):
    _token, good = create_api_token(student, "script")
    for _ in range(4):
        response = client.get("/api/jobs/1", headers={"Authorization": "Bearer atr_guess"}, REMOTE_ADDR="198.51.100.1")
        assert response.status_code == 401
    # Locked: even a valid token from that address waits, and is told why.
    blocked = client.get("/api/jobs/1", headers={"Authorization": f"Bearer {good}"}, REMOTE_ADDR="198.51.100.1")
    assert blocked.status_code == 429
    assert "Too many invalid API tokens" in blocked.json()["detail"]
    other = client.get("/api/tables/workbooks", headers={"Authorization": f"Bearer {good}"}, REMOTE_ADDR="198.51.100.2")
    assert other.status_code in (200, 403)  # authenticated; the area rule decides the rest
    call_command("unlock_logins", "--address", "198.51.100.1")
    again = client.get("/api/tables/workbooks", headers={"Authorization": f"Bearer {good}"}, REMOTE_ADDR="198.51.100.1")
    assert again.status_code == other.status_code


def test_password_token_endpoint_shares_the_login_throttle(client, password):
    import base64

    UserFactory(username="vic")

    def basic(pw: str):
        creds = base64.b64encode(f"vic:{pw}".encode()).decode()
        return client.post(
            "/api/tokens",
            data={"name": "x"},
            content_type="application/json",
            headers={"Authorization": f"Basic {creds}"},
            REMOTE_ADDR="198.51.100.2",
        )

    for _ in range(3):
        assert basic("nope").status_code == 401
    locked = basic(password)
    assert locked.status_code == 429
    assert "Too many failed log-in attempts" in locked.json()["detail"]


def test_bad_bearer_tokens_on_the_openai_endpoint_are_limited_too(client, researcher):
    _token, good = create_api_token(researcher, "script")
    for _ in range(4):
        response = client.get("/v1/models", headers={"Authorization": "Bearer atr_guess"}, REMOTE_ADDR="198.51.100.9")
        assert response.status_code == 401
    blocked = client.get("/v1/models", headers={"Authorization": f"Bearer {good}"}, REMOTE_ADDR="198.51.100.9")
    assert blocked.status_code == 429
    assert "Too many invalid tokens" in blocked.json()["error"]["message"]
    call_command("unlock_logins", "--address", "198.51.100.9")
    again = client.get("/v1/models", headers={"Authorization": f"Bearer {good}"}, REMOTE_ADDR="198.51.100.9")
    assert again.status_code == 200
