"""One area check per API router: `Router(auth=area_auth("tables"))`.

The router's auth is the API's own ways in (a bearer token, or the session with CSRF), then
the role check for the router's area, so no endpoint repeats it. A signed-in user whose role
may not use the area gets 403 with the reason; nobody signed in gets 401."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from apps.accounts.api_auth import ActiveSessionAuth, BearerTokenAuth
from apps.accounts.permissions import AREA_ROLES, can_access_area

AREA_NAMES = {
    "pbl": "PBL studio",
    "lingualens": "LinguaLens",
    "tables": "Tables",
    "kbqa": "KBQA",
    "playground": "the model playground",
    "jobs": "jobs",
    "cohorts": "classes",
    "models": "model administration",
}


def check_area(user, area: str):
    if user is not None and not can_access_area(user, area):
        raise PermissionDenied(f"Your role cannot use {AREA_NAMES.get(area, area)}.")
    return user


class AreaBearerAuth(BearerTokenAuth):
    def __init__(self, area: str) -> None:
        super().__init__()
        self.area = area

    def authenticate(self, request: HttpRequest, token: str):
        return check_area(super().authenticate(request, token), self.area)


class AreaSessionAuth(ActiveSessionAuth):
    def __init__(self, area: str) -> None:
        super().__init__()
        self.area = area

    def authenticate(self, request: HttpRequest, key):
        return check_area(super().authenticate(request, key), self.area)


def area_auth(area: str) -> list:
    if area not in AREA_ROLES:
        raise ValueError(f"unknown area {area!r}")
    return [AreaBearerAuth(area), AreaSessionAuth(area)]
