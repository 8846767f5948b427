from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from apps.accounts.permissions import can_access_area
from apps.core.context_processors import AREAS, visible_areas


@login_required
def home(request):
    return render(request, "core/home.html", {"areas": visible_areas(request.user)})


@login_required
def area_placeholder(request, area: str):
    # Each area replaces this page when its issue lands; the role check is already final.
    if not can_access_area(request.user, area):
        raise PermissionDenied
    label, description = next((label, desc) for key, label, _url, desc in AREAS if key == area)
    return render(request, "core/area_placeholder.html", {"area": area, "label": label, "description": description})


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)
