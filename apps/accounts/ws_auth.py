"""WebSocket authentication for scripts: `Authorization: Bearer <token>` when there is
no session. Browsers use their session cookie (AuthMiddlewareStack)."""

from channels.db import database_sync_to_async

from apps.accounts.services import user_for_token


class BearerTokenWebSocketMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            headers = dict(scope.get("headers", []))
            authorization = headers.get(b"authorization", b"").decode()
            if authorization.lower().startswith("bearer "):
                token_user = await database_sync_to_async(user_for_token)(authorization[7:].strip())
                if token_user is not None:
                    scope = {**scope, "user": token_user}
        return await self.inner(scope, receive, send)


def origin_checked(application):
    """Browsers always send Origin, and it must be one of ours (cross-site WebSocket
    hijacking). Scripts send no Origin but a bearer token, which no other site can
    make a browser send, so those pass."""
    from channels.security.websocket import AllowedHostsOriginValidator

    validated = AllowedHostsOriginValidator(application)

    async def app(scope, receive, send):
        headers = dict(scope.get("headers", []))
        if b"origin" not in headers and headers.get(b"authorization", b"").lower().startswith(b"bearer "):
            return await application(scope, receive, send)
        return await validated(scope, receive, send)

    return app
