"""One error vocabulary for the JSON API, mapped once at its edge (config/api.py).

Services raise what they mean: Django's ValidationError (bad input), PermissionDenied (not
yours), Http404 / ObjectDoesNotExist (no such thing), `Conflict` (the state forbids it now), or an
app's own input error class, which config/api.py maps to one of these statuses. Every error
under /api/ is then JSON of one shape:

    {"detail": "<one human sentence>", "errors": ["<path>: <message>", ...]}

`errors` is there when there is something to point at (a field, a JSON path); each entry starts
with its path. Statuses: 422 bad input, 401 not signed in, 403 not allowed, 404 missing,
409 conflict, 413 too large, 429 throttled, 503 not ready, 500 a bug (logged, never a traceback).
"""

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as SchemaError

logger = logging.getLogger("atrium.api")


class Conflict(Exception):  # noqa: N818  (reads as the status it becomes)
    """The request is valid but the current state forbids it (a name taken, nothing to undo, ...)."""


def error_body(detail: str, errors: Iterable[str] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail}
    errors = list(errors)
    if errors:
        body["errors"] = errors
    return body


def error_response(status: int, detail: str, errors: Iterable[str] = ()) -> JsonResponse:
    """The same shape outside ninja (the /api/ catch-all for unknown paths)."""
    return JsonResponse(error_body(detail, errors), status=status, json_dumps_params={"ensure_ascii": False})


def field_path(loc: Iterable[Any]) -> str:
    """("body", "payload", "items", 0, "n") -> "body.payload.items[0].n"."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def schema_errors(exc: SchemaError) -> list[str]:
    return [f"{field_path(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors]


def django_errors(exc: ValidationError) -> tuple[str, list[str]]:
    if hasattr(exc, "error_dict"):
        errors = [f"{field}: {message}" for field, messages in exc.message_dict.items() for message in messages]
        return " ".join(errors), errors
    return " ".join(exc.messages), []


def install_error_handlers(api: NinjaAPI, mapped: dict[type[Exception], int] | None = None) -> None:
    """Register the vocabulary on `api`. `mapped` adds the apps' own classes with their status;
    ninja looks handlers up along each exception's MRO, so the most specific class wins."""

    def respond(request: HttpRequest, status: int, detail: str, errors: Iterable[str] = ()) -> HttpResponse:
        return api.create_response(request, error_body(detail, errors), status=status)

    def on_schema_error(request: HttpRequest, exc: SchemaError) -> HttpResponse:
        errors = schema_errors(exc)
        return respond(request, 422, f"The request is not valid: {'; '.join(errors)}", errors)

    def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        detail, errors = django_errors(exc)
        return respond(request, 422, detail or "The request is not valid.", errors)

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return respond(request, exc.status_code, str(exc))

    def on_mapped(status: int, request: HttpRequest, exc: Exception) -> HttpResponse:
        # An app's error class may carry path-named messages (KBQA's import errors do).
        errors = getattr(exc, "errors", ())
        return respond(request, status, str(exc) or "Error", errors if isinstance(errors, list) else ())

    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("API error on %s %s", request.method, request.path, exc_info=exc)
        return respond(request, 500, "Internal server error: the error was logged.")

    def fixed(status: int, default: str, say_why: bool = True) -> Callable[[HttpRequest, Exception], HttpResponse]:
        # Database errors name tables and constraints: the client gets the default sentence.
        return lambda request, exc: respond(request, status, (str(exc) if say_why else "") or default)

    api.add_exception_handler(SchemaError, on_schema_error)
    api.add_exception_handler(ValidationError, on_validation_error)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(PermissionDenied, fixed(403, "You are not allowed to do this."))
    api.add_exception_handler(Http404, fixed(404, "Not found."))
    api.add_exception_handler(ObjectDoesNotExist, fixed(404, "Not found."))
    api.add_exception_handler(Conflict, fixed(409, "This conflicts with the current state."))
    # A unique constraint hit by a race: the client can retry or choose another name.
    api.add_exception_handler(IntegrityError, fixed(409, "This conflicts with existing data.", say_why=False))
    api.add_exception_handler(Exception, on_unexpected)
    for exc_class, status in (mapped or {}).items():
        api.add_exception_handler(exc_class, partial(on_mapped, status))
