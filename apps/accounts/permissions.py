"""The one place that says who may do what. Views, API endpoints and WebSocket
consumers all ask these functions."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from apps.accounts.models import Role

ALL_ROLES = frozenset(Role.values)

# Which roles see which area of Atrium. Admins see everything.
AREA_ROLES: dict[str, frozenset[str]] = {
    "pbl": frozenset({Role.STUDENT, Role.TEACHER, Role.ADMIN}),
    "lingualens": frozenset({Role.RESEARCHER, Role.ADMIN}),
    "tables": ALL_ROLES,
    "kbqa": ALL_ROLES,
    "playground": frozenset({Role.RESEARCHER, Role.ADMIN}),
    "jobs": ALL_ROLES,
    "cohorts": frozenset({Role.STUDENT, Role.TEACHER, Role.ADMIN}),
    "models": frozenset({Role.ADMIN}),
}


def has_role(user, *roles: str) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.role == Role.ADMIN or user.role in roles


def can_access_area(user, area: str) -> bool:
    return has_role(user, *AREA_ROLES[area])


def can_view_owned(user, owner_id: int) -> bool:
    """Objects with an owner (jobs, workbooks, ...) are private to the owner and admins."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.pk == owner_id or user.is_superuser or user.role == Role.ADMIN


def area_required(area: str) -> Callable:
    """View decorator: log in first, then 403 unless the user's role may use `area`."""
    if area not in AREA_ROLES:
        raise ValueError(f"unknown area {area!r}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not can_access_area(request.user, area):
                raise PermissionDenied(f"Your role cannot use {area}.")
            return view(request, *args, **kwargs)

        wrapped.required_area = area  # read by the role-matrix test (outer decorators copy it with wraps)
        return wrapped

    return decorator
