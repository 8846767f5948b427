"""Cross-site posts carry the victim's cookie but no CSRF token: every page route and every
session-authenticated API write must refuse them (403) before any view runs. Routes are
read from the URL configuration and the API's schema; the few that are exempt by design
(token-only endpoints that never read the cookie) are listed with the reason."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from config.api import api

pytestmark = pytest.mark.django_db

# Exempt because they authenticate by bearer token only and ignore the session cookie.
CSRF_EXEMPT = {"v1/models", "v1/chat/completions", "v1/completions"}
SKIP_PREFIXES = ("api/", "admin/", "static/")  # the API has its own test below; admin is Django's


def page_routes(patterns=None, prefix: str = "") -> list[str]:
    found = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += page_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            found.append(route)
    return sorted({route for route in found if not route.startswith(SKIP_PREFIXES) and "^" not in route})


def fill(route: str) -> str:
    # Any id will do: the CSRF check runs before the view looks anything up.
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: "x" if m.group(1) in ("str", "slug") else "1", route)


PAGES = page_routes()
API_WRITES = [
    (method.upper(), path)
    for path, methods in api.get_openapi_schema(path_prefix="/api/")["paths"].items()
    for method in methods
    if method.upper() in ("POST", "PUT", "PATCH", "DELETE")
]


@pytest.fixture
def victim(researcher):
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    return client


def test_routes_were_found():
    assert len(PAGES) > 30
    assert len(API_WRITES) > 30
    assert set(PAGES) >= CSRF_EXEMPT


@pytest.mark.parametrize("route", [route for route in PAGES if route not in CSRF_EXEMPT])
def test_page_post_without_csrf_token_is_refused(victim, route):
    response = victim.post(fill(route), {"name": "x", "text": "x"}, HTTP_ORIGIN="http://evil.example")
    assert response.status_code == 403, response.status_code


@pytest.mark.parametrize(("method", "path"), API_WRITES)
def test_api_write_with_session_and_no_csrf_token_is_refused(victim, method, path):
    url = re.sub(r"\{(\w+)\}", "1", path)
    response = getattr(victim, method.lower())(url, data="{}", content_type="application/json")
    assert response.status_code == 403, (response.status_code, response.content[:200])


def test_a_foreign_origin_is_refused_even_with_a_token(victim):
    """Django checks Origin too: a forged form that somehow had the token still fails."""
    page = victim.get("/accounts/profile/")
    token = page.context["csrf_token"]
    foreign = victim.post(
        "/accounts/profile/", {"name": "x", "csrfmiddlewaretoken": token}, HTTP_ORIGIN="http://127.0.0.1:9999"
    )
    assert foreign.status_code == 403
    own = victim.post(
        "/accounts/profile/", {"name": "x", "csrfmiddlewaretoken": token}, HTTP_ORIGIN="http://testserver"
    )
    assert own.status_code == 200


def test_token_only_endpoints_ignore_the_cookie(victim):
    for route in sorted(CSRF_EXEMPT):
        response = victim.post(fill(route), data="{}", content_type="application/json")
        assert response.status_code in (401, 405), (route, response.status_code)
