from functools import cache

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.accounts.permissions import can_access_area

# (area, label, url name, one-line description)
AREAS = [
    ("pbl", _("PBL studio"), "pbl:index", _("Project-based learning with an orchestrator and collaborator agents.")),
    (
        "lingualens",
        _("LinguaLens"),
        "lingualens:index",
        _("Sparse-autoencoder features of a language model, in English and Chinese."),
    ),
    ("tables", _("Tables"), "tables:list", _("Ask questions of spreadsheets and document tables.")),
    ("kbqa", _("KBQA"), "kbqa:index", _("Questions over a knowledge base, answered by KoPL programs.")),
]


@cache
def area_url(url_name: str) -> str:
    """An area's address: fixed for the process, and the navigation asks for it on every page."""
    return reverse(url_name)


def visible_areas(user) -> list[dict]:
    return [
        {"key": key, "label": label, "url": area_url(url_name), "description": description}
        for key, label, url_name, description in AREAS
        if can_access_area(user, key)
    ]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_areas": []}
    return {
        "nav_areas": visible_areas(user),
        "nav_jobs": can_access_area(user, "jobs"),
        "nav_playground": can_access_area(user, "playground"),
        "nav_models": can_access_area(user, "models"),
    }
