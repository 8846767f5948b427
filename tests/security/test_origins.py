"""Which Origin headers the WebSocket gate accepts (apps.accounts.ws_auth): exact scheme,
host and port; the server's own address comes from the Host header (checked against
ALLOWED_HOSTS), the rest from settings."""

import pytest

from apps.accounts.ws_auth import origin_allowed, parse_origin


def scope(host: str | None = "127.0.0.1:8000", scheme: str = "ws", **headers: str) -> dict:
    pairs = [(b"host", host.encode())] if host is not None else []
    pairs += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": pairs}


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.0.0.1:8000/", True),  # a trailing slash is still the same origin
        ("HTTP://127.0.0.1:8000", True),
        ("http://127.0.0.1:9999", False),  # another port of the same host
        ("http://127.0.0.1", False),  # port 80 is another port
        ("https://127.0.0.1:8000", False),  # the page was not served over TLS
        ("http://localhost:8000", False),  # a different host name is a different origin
        ("http://127.0.0.1.evil.example:8000", False),
        ("null", False),
        ("", False),
        ("http://127.0.0.1:notaport", False),
    ],
)
def test_same_origin_means_scheme_host_and_port(origin, expected):
    assert origin_allowed(scope(), origin) is expected


def test_default_ports_and_tls(settings):
    settings.ALLOWED_HOSTS = ["example.org"]
    tls = scope("example.org", scheme="wss")  # the browser reached https://example.org
    assert origin_allowed(tls, "https://example.org:443")  # 443 is https' default port
    assert origin_allowed(tls, "https://example.org")
    assert not origin_allowed(tls, "http://example.org")
    assert parse_origin("https://Example.org") == ("https", "example.org", 443)
    assert parse_origin("http://[::1]:8000") == ("http", "::1", 8000)


def test_host_must_be_an_allowed_host(settings):
    settings.ALLOWED_HOSTS = ["atrium.example.org"]
    # Host and Origin agree, but the host is not ours (DNS rebinding, a stray vhost): refused.
    assert not origin_allowed(scope("evil.example:8000"), "http://evil.example:8000")
    assert origin_allowed(scope("atrium.example.org", scheme="wss"), "https://atrium.example.org")
    assert not origin_allowed(scope("atrium.example.org", scheme="wss"), "https://atrium.example.org:8443")


def test_tls_behind_a_proxy_follows_secure_proxy_ssl_header(settings):
    settings.ALLOWED_HOSTS = ["atrium.example.org"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    behind_proxy = scope("atrium.example.org", scheme="ws", x_forwarded_proto="https")
    assert origin_allowed(behind_proxy, "https://atrium.example.org")
    assert not origin_allowed(behind_proxy, "http://atrium.example.org")


def test_configured_origins_match_exactly(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.org", "https://*.school.example"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["http://localhost:5173"]
    own = scope()
    assert origin_allowed(own, "https://app.example.org")
    assert not origin_allowed(own, "https://app.example.org:444")
    assert not origin_allowed(own, "http://app.example.org")
    assert origin_allowed(own, "https://class1.school.example")
    assert not origin_allowed(own, "https://school.example.evil")
    assert not origin_allowed(own, "http://class1.school.example")
    assert origin_allowed(own, "http://localhost:5173")
    assert not origin_allowed(own, "http://localhost:3000")


def test_no_host_header_has_no_own_origin():
    assert not origin_allowed(scope(host=None), "http://127.0.0.1:8000")
