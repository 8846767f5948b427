"""The HTTP side of config.asgi: sync views run by the WSGI handler on a pool thread (one hop),
coroutine views by Django's ASGI handler. Driven through the real ASGI application, with the real
database, as a server would call it."""

import asyncio
import base64
import json

import pytest
from django.conf import settings
from django.db import connection

from apps.accounts.models import ApiToken
from config.asgi import application
from config.http_threads import has_async_view, wsgi_environ

pytestmark = pytest.mark.django_db(transaction=True)


def call(path: str, method: str = "GET", headers: list | None = None, body_parts: tuple = (b"",), query=b""):
    """One request through the ASGI application; the answer's status, headers and joined body."""

    async def run():
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), *(headers or [])],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        incoming = [
            {"type": "http.request", "body": part, "more_body": i < len(body_parts) - 1}
            for i, part in enumerate(body_parts)
        ]
        sent = []

        async def receive():
            if incoming:
                return incoming.pop(0)
            await asyncio.Event().wait()  # no disconnect: the client waits for its answer

        async def send(message):
            sent.append(message)

        await asyncio.wait_for(application(scope, receive, send), timeout=60)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], dict(start["headers"]), body

    return asyncio.run(run())


def test_a_page_is_served_with_its_headers():
    status, headers, body = call("/healthz")
    assert status == 200
    assert headers[b"content-type"].startswith(b"application/json")
    assert json.loads(body) == {"ok": True}


def test_a_body_sent_in_parts_without_a_length_reaches_the_view(student, password):
    """A chunked upload arrives as several messages with no Content-Length: the view gets it whole."""
    basic = base64.b64encode(f"{student.username}:{password}".encode())
    status, _headers, body = call(
        "/api/tokens",
        method="POST",
        headers=[(b"authorization", b"Basic " + basic), (b"content-type", b"application/json")],
        body_parts=(b'{"name": "lap', b'top"}'),
    )
    assert status == 201, body
    assert json.loads(body)["name"] == "laptop"
    assert ApiToken.objects.get(user=student).name == "laptop"


def test_a_file_response_is_streamed_whole():
    status, headers, body = call("/favicon.ico")
    assert status == 200
    assert headers[b"content-type"] == b"image/x-icon"
    assert body == (settings.BASE_DIR / "static" / "favicon.ico").read_bytes()


def test_coroutine_views_go_to_the_asgi_handler_and_the_rest_to_the_threads():
    assert has_async_view("/v1/models")
    assert not has_async_view("/")
    assert not has_async_view("/no/such/page/")
    status, _headers, body = call("/v1/models")  # no token: the async view's own JSON refusal
    assert status == 401
    assert "error" in json.loads(body)


def test_a_missing_page_is_the_sites_404():
    status, _headers, body = call("/no/such/page/")
    assert status == 404
    assert b"<html" in body.lower()


def test_headers_repeated_by_the_client_are_joined_as_a_wsgi_server_joins_them():
    environ = wsgi_environ(
        {
            "method": "GET",
            "path": "/x/",
            "query_string": b"a=1",
            "http_version": "1.1",
            "headers": [(b"accept", b"text/html"), (b"accept", b"*/*"), (b"content-length", b"99")],
        },
        body=None,
        body_length=0,
    )
    assert environ["HTTP_ACCEPT"] == "text/html,*/*"
    assert environ["CONTENT_LENGTH"] == "0"  # what was read, not what was declared
    assert environ["QUERY_STRING"] == "a=1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", "80")


def open_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_each_request_closes_the_connection_its_own_thread_opened():
    """request_finished runs in the thread that served the request: had the close run on another
    pool thread, each request would leave a connection open (up to one per thread)."""
    before = open_connections()
    for _ in range(3 * settings.WEB_THREADS):
        assert call("/healthz")[0] == 200  # the page queries the database
    assert open_connections() <= before


def test_too_many_headers_of_one_name_is_a_bad_request():
    status, _headers, body = call("/healthz", headers=[(b"x-many", b"1")] * 101)
    assert status == 400
    assert b"too many headers" in body


def test_a_raw_non_ascii_query_string_reaches_the_view():
    status, _headers, _body = call("/healthz", query="q=caf\xe9".encode("latin1"))
    assert status == 200
