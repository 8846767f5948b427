"""Who may open a WebSocket, and as whom.

Browsers send their session cookie and always an Origin header. The Origin must be one
of ours exactly (scheme, host and port), or another page on the same host (any other
port of it) could read a user's streams with the user's cookie: cross-site WebSocket
hijacking. Ours are: the server's own origin, as the browser addressed it (the Host
header, which must be in ALLOWED_HOSTS, with http/https from the connection), and the
origins listed in CSRF_TRUSTED_ORIGINS and WEBSOCKET_ALLOWED_ORIGINS.

Scripts send `Authorization: Bearer <token>`. A token must be valid or the connection
is refused, and a valid token alone identifies the user: the session cookie is not
read. No page can make a browser send that header, so a script needs no Origin; if it
sends one, it is checked like a browser's.

Everything else (no Origin and no token, a foreign Origin, a bad token) is refused at
the handshake (HTTP 403), before any consumer runs.
"""

from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from apps.accounts import throttle

DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]  # (scheme, host, port), normalised


def parse_origin(value: str) -> Origin | None:
    """'http://Example.com' -> ('http', 'example.com', 80); None for 'null' or junk."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme]


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _allowed_hosts() -> list[str]:
    # Django's own fallback in DEBUG with no ALLOWED_HOSTS (HttpRequest.get_host).
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


def own_origin(scope: dict) -> Origin | None:
    """The origin a browser gives pages of this server at the address it connected to."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    secure = scope.get("scheme") in ("wss", "https")
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        # Same rule as HttpRequest.is_secure(): trust the proxy's header when configured.
        name, value = proxy_header
        forwarded = _header(scope, name.removeprefix("HTTP_").replace("_", "-").lower().encode())
        if forwarded is not None:
            secure = forwarded.split(",")[0].strip() == value
    return parse_origin(f"{'https' if secure else 'http'}://{host}")


def _matches(origin: Origin, allowed: str) -> bool:
    """Exact scheme and port; a host of '*.example.com' (CSRF_TRUSTED_ORIGINS' wildcard) matches
    example.com's subdomains."""
    wildcard = "://*." in allowed
    pattern = parse_origin(allowed.replace("://*.", "://", 1) if wildcard else allowed)
    if pattern is None:
        return False
    scheme, host, port = origin
    if (scheme, port) != (pattern[0], pattern[2]):
        return False
    return host.endswith("." + pattern[1]) if wildcard else host == pattern[1]


def origin_allowed(scope: dict, value: str) -> bool:
    origin = parse_origin(value)
    if origin is None:
        return False
    if origin == own_origin(scope):
        return True
    configured = [*settings.CSRF_TRUSTED_ORIGINS, *settings.WEBSOCKET_ALLOWED_ORIGINS]
    return any(_matches(origin, allowed) for allowed in configured)


async def deny(scope, receive, send) -> None:
    """Refuse the handshake (HTTP 403). A bare ASGI app rather than channels' WebsocketDenier,
    which is a consumer and so opens a channel-layer receive for every refused connection."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})  # 1008: policy violation


class WebSocketGate:
    """The ASGI app for every WebSocket: checks the Origin and the token, then hands the
    connection to `inner` (the URL router) with scope["user"] set."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.with_session = AuthMiddlewareStack(inner)
        self.deny = deny

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if origin is not None and not origin_allowed(scope, origin):
            return await self.deny(scope, receive, send)
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            scheme, _space, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return await self.deny(scope, receive, send)
            try:
                user = await database_sync_to_async(throttle.user_for_token_from)(
                    token.strip(), throttle.scope_address(scope)
                )
            except throttle.TokenThrottledError:
                user = None
            if user is None:
                return await self.deny(scope, receive, send)
            # Not through AuthMiddlewareStack: the cookie must not stand in for the token.
            return await self.inner({**scope, "user": user}, receive, send)
        if origin is None:
            return await self.deny(scope, receive, send)  # neither a browser nor a script with a token
        return await self.with_session(scope, receive, send)
