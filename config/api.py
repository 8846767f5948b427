"""The JSON API (/api/, OpenAPI docs at /api/docs). Each app contributes a router."""

from ninja import NinjaAPI

from apps.accounts.api_auth import api_auth
from apps.inference.api import router as inference_router
from apps.jobs.api import router as jobs_router
from apps.kbqa.api import router as kbqa_router
from apps.lingualens.api import router as lingualens_router
from apps.pbl.api import router as pbl_router
from apps.tables.api import router as tables_router

api = NinjaAPI(title="Atrium API", version="1.0", auth=api_auth, urls_namespace="api")
api.add_router("/", jobs_router)
api.add_router("/", inference_router)
api.add_router("/", tables_router)
api.add_router("/", kbqa_router)
api.add_router("/", pbl_router)
api.add_router("/", lingualens_router)
