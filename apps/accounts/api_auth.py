"""API authentication: bearer tokens for scripts, the session (with CSRF) for the browser."""

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from apps.accounts import throttle


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        try:
            user = throttle.user_for_token_from(token, throttle.request_address(request.META))
        except throttle.TokenThrottledError as exc:
            raise HttpError(
                429,
                f"Too many invalid API tokens from your address. Try again in {throttle.minutes(exc.retry_after)} "
                "minutes, or ask an administrator to unlock it.",
            ) from None
        if user is not None:
            request.user = user
        return user


class ActiveSessionAuth(SessionAuth):
    def authenticate(self, request: HttpRequest, key):
        if "authorization" in request.headers:
            return None  # a request that names a token is judged by that token alone, never the cookie
        user = super().authenticate(request, key)
        return user if user is not None and user.is_active else None


api_auth = [BearerTokenAuth(), ActiveSessionAuth()]
