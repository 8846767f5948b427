"""WebSocket fragments in the reader's language.

HTTP pages get their language from LocaleMiddleware (the language cookie, then Accept-Language).
Consumers render fragments too (a job's status, a team's chat), and Channels runs no Django
middleware, so without this they rendered in LANGUAGE_CODE: a Chinese page's live job status
turned English at its first update. The same choice is made here from the handshake's headers,
and the language is active for the whole connection.
"""

from types import SimpleNamespace

from django.http import parse_cookie
from django.utils import translation


def language_of(scope: dict) -> str:
    """The language LocaleMiddleware would choose for a request with the handshake's headers."""
    headers = {key.decode("latin1").lower(): value.decode("latin1") for key, value in scope.get("headers", [])}
    request = SimpleNamespace(
        COOKIES=parse_cookie(headers.get("cookie", "")),
        META={"HTTP_ACCEPT_LANGUAGE": headers.get("accept-language", "")},
        path_info=scope.get("path", "/"),
    )
    return translation.get_language_from_request(request)


class WebSocketLanguage:
    """ASGI middleware: the connection's consumer runs with the reader's language active."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        with translation.override(language_of(scope)):
            return await self.inner(scope, receive, send)
