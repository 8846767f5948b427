"""Schemathesis against /api/openapi.json: every operation, called with the bearer token of each
role and with none, answers without a server error, and every documented answer matches its
schema. In process (WSGI, the test's database transaction); no worker runs, so jobs stay queued."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from apps.accounts.models import User
from apps.accounts.services import create_api_token
from apps.kbqa import api as kbqa_api
from config.wsgi import application

ROLES = ("student", "teacher", "researcher", "admin")
CHECKS = [not_a_server_error, response_schema_conformance]


# Loaded once at collection (the schema view reads no database): one test per operation.
SCHEMA = schemathesis.openapi.from_wsgi("/api/openapi.json", application)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture
def in_process(db, monkeypatch):
    # Django's test client does the same: closing "old" connections at each request's end
    # would close the one holding this test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # With no worker, an ask would poll the database for up to a minute before saying "pending".
    monkeypatch.setattr(kbqa_api, "MAX_WAIT_SECONDS", 0.0)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def role_headers(db) -> dict[str, dict]:
    """One user per role (no password: hashing one costs 0.3 s) with an API token, and no one."""
    headers = {"anonymous": {}}
    for role in ROLES:
        user = User.objects.create_user(username=f"fuzz-{role}", role=role)
        headers[role] = {"Authorization": f"Bearer {create_api_token(user, 'schemathesis')[1]}"}
    return headers


def test_the_schema_lists_every_api_route():
    assert len(OPERATIONS) > 80


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_api_operation(operation, in_process, role_headers):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=4,
        deadline=None,
        database=None,  # no .hypothesis/ folder; derandomized, so every run tries the same cases
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def every_role(case):
        for headers in role_headers.values():
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

    every_role()
