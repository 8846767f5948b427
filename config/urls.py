from django.contrib import admin
from django.urls import include, path, re_path

from config.api import api, api_index, not_found

urlpatterns = [
    path("", include("apps.core.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("jobs/", include("apps.jobs.urls")),
    path("inference/", include("apps.inference.urls")),
    path("tables/", include("apps.tables.urls")),
    path("kbqa/", include("apps.kbqa.urls")),
    path("pbl/", include("apps.pbl.urls")),
    path("lingualens/", include("apps.lingualens.urls")),
    path("v1/", include("apps.inference.openai_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", api_index),  # before ninja's own root, which is an HTML 404
    path("api/", api.urls),
    re_path(r"^api(?:/.*)?$", not_found),  # anything else under /api/ is a JSON 404, not the HTML page
    path("admin/", admin.site.urls),
]

handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.page_not_found"
