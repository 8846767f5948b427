"""Every WebSocket route, through the whole ASGI application (config.asgi: the gate, the
session, the URL router, the consumer) and the real Redis channel layer.

Generated from config/routing.py: each route gets the owner's control connections (which
must open, so the refusals below mean something), then a stranger's session and token,
no session, foreign origins (another port of the same host among them), bogus tokens,
and a stranger's token riding on the owner's cookie."""

import re

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from config.asgi import application
from config.routing import websocket_urlpatterns
from tests.security.conftest import CLIENT_ADDRESS, WS_OWNED, Owned, session_cookie, token_for

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "127.0.0.1:8120"
OWN_ORIGIN = f"http://{HOST}"
FOREIGN_ORIGINS = [
    "http://127.0.0.1:9999",  # another port of the same host (the hole this suite closes)
    "http://localhost:3000",
    "https://127.0.0.1:8120",  # same host and port, other scheme
    "http://evil.example",
    "null",
]
BOGUS_AUTHORIZATIONS = ["Bearer atr_not-a-real-token", "Bearer nonsense", "Bearer ", "Basic YWxpY2U6cHc="]
ROUTES = [str(pattern.pattern) for pattern in websocket_urlpatterns]


def path_for(route: str, kwargs: dict[str, int]) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), route)


@async_to_sync
async def attempt(path: str, origin: str | None = None, cookie: str | None = None, authorization: str | None = None):
    headers = [(b"host", HOST.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["client"] = (CLIENT_ADDRESS, 50000)
    connected, _code = await communicator.connect(timeout=5)
    await communicator.disconnect()  # a refused consumer still waits for the disconnect to end
    return connected


def owned(route: str) -> tuple[Owned, str]:
    thing = WS_OWNED[route]()
    return thing, path_for(route, thing.kwargs)


def test_every_websocket_route_has_an_owned_object():
    assert ROUTES, "no WebSocket routes found"
    assert set(ROUTES) == set(WS_OWNED), "add a builder for each new WebSocket route to tests/security/conftest.py"


@pytest.mark.parametrize("route", ROUTES)
def test_owner_connects_with_own_origin_or_own_token(route):
    thing, path = owned(route)
    assert attempt(path, origin=OWN_ORIGIN, cookie=session_cookie(thing.owner))
    assert attempt(path, authorization=f"Bearer {token_for(thing.owner)}")  # a script: no Origin


@pytest.mark.parametrize("route", ROUTES)
def test_foreign_object_is_refused(route):
    thing, path = owned(route)
    assert not attempt(path, origin=OWN_ORIGIN, cookie=session_cookie(thing.stranger))
    assert not attempt(path, authorization=f"Bearer {token_for(thing.stranger)}")


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_is_refused(route):
    _thing, path = owned(route)
    assert not attempt(path, origin=OWN_ORIGIN)
    assert not attempt(path)


# One test per route with a loop inside (each test flushes the database, which is slow);
# the failure message names the origin or header that got through.
@pytest.mark.parametrize("route", ROUTES)
def test_foreign_origins_are_refused_with_the_owners_cookie(route):
    thing, path = owned(route)
    cookie = session_cookie(thing.owner)
    opened = [origin for origin in FOREIGN_ORIGINS if attempt(path, origin=origin, cookie=cookie)]
    assert opened == []


@pytest.mark.parametrize("route", ROUTES)
def test_bogus_tokens_are_refused_even_with_the_owners_cookie(route):
    thing, path = owned(route)
    cookie = session_cookie(thing.owner)
    opened = [
        (authorization, origin)
        for authorization in BOGUS_AUTHORIZATIONS
        for origin in (OWN_ORIGIN, None)
        if attempt(path, origin=origin, cookie=cookie, authorization=authorization)
    ]
    assert opened == []


@pytest.mark.parametrize("route", ROUTES)
def test_a_token_alone_names_the_user_not_the_cookie(route):
    thing, path = owned(route)
    stranger_token = f"Bearer {token_for(thing.stranger)}"
    assert not attempt(path, origin=OWN_ORIGIN, cookie=session_cookie(thing.owner), authorization=stranger_token)


@pytest.mark.parametrize("route", ROUTES)
def test_a_cookie_without_origin_or_token_is_refused(route):
    thing, path = owned(route)
    assert not attempt(path, cookie=session_cookie(thing.owner))
