"""API authentication: bearer tokens for scripts, the session (with CSRF) for the browser."""

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from apps.accounts.services import user_for_token


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


class ActiveSessionAuth(SessionAuth):
    def authenticate(self, request: HttpRequest, key):
        user = super().authenticate(request, key)
        return user if user is not None and user.is_active else None


api_auth = [BearerTokenAuth(), ActiveSessionAuth()]
