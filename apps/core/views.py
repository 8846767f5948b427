from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import FileResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control

from apps.accounts.management.commands.load_demo_data import DEMO_COHORT_CODE, DEMO_PASSWORD, DEMO_USERS
from apps.accounts.models import Cohort, Role
from apps.accounts.permissions import can_access_area
from apps.core.context_processors import AREAS, visible_areas


def home(request):
    """Signed in: the areas open to your role. Signed out: what Atrium is, and who each system is for."""
    if request.user.is_authenticated:
        return render(request, "core/home.html", {"areas": visible_areas(request.user)})
    return render(
        request,
        "core/landing.html",
        {"demo_accounts": demo_accounts(), "demo_password": DEMO_PASSWORD, "demo_class_code": DEMO_COHORT_CODE},
    )


def demo_accounts() -> list[dict]:
    """The demo users, only with DEBUG on and only once `load_demo_data` has run (its class exists):
    a production server never prints a password, whatever its data."""
    if not settings.DEBUG or not Cohort.objects.filter(join_code=DEMO_COHORT_CODE).exists():
        return []
    tries = {
        Role.STUDENT: _("join a PBL project run, chat with the agents; ask a table a question"),
        Role.TEACHER: _("open the PBL dashboard of the demo run"),
        Role.RESEARCHER: _("browse the LinguaLens feature catalogue and train an SAE; train a KBQA parser"),
        Role.ADMIN: _("everything, plus the model list and the Django admin"),
    }
    return [{"username": name, "role": role.label, "try": tries[role]} for name, role in DEMO_USERS]


@cache_control(max_age=86400, public=True)
def favicon(request):
    # Browsers ask for /favicon.ico on every site whatever the page links; pages link the SVG too.
    return FileResponse((settings.BASE_DIR / "static" / "favicon.ico").open("rb"), content_type="image/x-icon")


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
