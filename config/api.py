"""The JSON API (/api/, OpenAPI docs at /api/docs). Each app contributes a router; errors
are mapped here, once, to the vocabulary in apps/core/errors.py."""

from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from ninja import NinjaAPI

from apps.accounts.api_auth import api_auth
from apps.accounts.api_tokens import router as tokens_router
from apps.core.errors import error_response, install_error_handlers
from apps.inference.api import router as inference_router
from apps.inference.backends import InferenceError, ModelFilesMissing, ModelNotFound
from apps.jobs.api import router as jobs_router
from apps.kbqa.api import router as kbqa_router
from apps.kbqa.kb_format import KBValidationError
from apps.lingualens.api import router as lingualens_router
from apps.lingualens.services import LensInputError
from apps.pbl.api import router as pbl_router
from apps.tables.api import router as tables_router
from apps.tables.workbooks import TableInputError

api = NinjaAPI(title="Atrium API", version="1.0", auth=api_auth, urls_namespace="api")
api.add_router("/", tokens_router)
api.add_router("/", jobs_router)
api.add_router("/", inference_router)
api.add_router("/", tables_router)
api.add_router("/", kbqa_router)
api.add_router("/", pbl_router)
api.add_router("/", lingualens_router)

# The apps' own error classes, each with the status it means (subclasses before their bases
# does not matter: ninja picks the handler of the most specific class).
install_error_handlers(
    api,
    {
        TableInputError: 422,
        LensInputError: 422,
        KBValidationError: 422,
        InferenceError: 422,  # bad parameters, a prompt too long
        ModelNotFound: 404,
        ModelFilesMissing: 503,  # the server's model files are not prepared: not the caller's fault
    },
)


def api_index(request: HttpRequest) -> JsonResponse:
    """GET /api/: where the docs are and how a script gets its first token."""
    return JsonResponse(
        {
            "name": api.title,
            "version": api.version,
            "docs": "/api/docs",
            "openapi": "/api/openapi.json",
            "first_token": "POST /api/tokens with HTTP Basic credentials (username and password)",
        }
    )


def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any /api/ path that no endpoint has: a JSON 404 (never the HTML page), with a hint when
    the path only differs by a trailing slash."""
    if request.path.endswith("/") and request.path.rstrip("/") not in ("", "/api"):
        try:
            match = resolve(request.path.rstrip("/"))
        except Resolver404:
            match = None
        if match is not None and match.func is not not_found:
            return error_response(
                404, f"No endpoint at {request.path}: API paths have no trailing slash, try {request.path.rstrip('/')}"
            )
    return error_response(404, f"No endpoint at {request.path}. The API's endpoints are listed at /api/docs.")
