"""The role matrix, generated from the URLconf and the API router: every route, as anonymous,
student, teacher, researcher, admin and a teacher of another class. No route may answer 5xx;
signed out is a redirect to the log-in page (pages) or 401 (API); a role outside the route's
area is 403; another class's teacher never reads this class's objects (403 or 404).

New routes join the matrix by themselves. A route whose parameter is not in PARAMS below is
visited with a value that names nothing (a 404 is then the expected answer)."""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from ninja.constants import NOT_SET

from apps.accounts.api_area import AreaBearerAuth
from apps.accounts.services import create_api_token
from apps.jobs.models import Job
from apps.kbqa import services as kbqa_services
from apps.lingualens.models import LinguisticFeature
from apps.pbl import board
from apps.pbl import services as pbl_services
from apps.pbl.models import ChatMessage, MessageKind, ProjectRun, RunStatus
from apps.tables import services as tables_services
from apps.tables import workbooks
from config.api import api
from tests.factories import CohortFactory, UserFactory

pytestmark = pytest.mark.django_db
BASE = Path(__file__).resolve().parents[2]
ROLES = ["anonymous", "student", "teacher", "researcher", "admin", "other_teacher"]
# Reachable signed out, by design.
PUBLIC = {
    "/",
    "/healthz",
    "/favicon.ico",
    "/accounts/login/",
    "/accounts/signup/",
    "/i18n/setlang/",
    "/api/",
    "/api/docs",
    "/api/openapi.json",
}
# Parameters that point at objects of the first class (teacher `tess`, student `alice`).
PRIVATE_PARAMS = {
    "job_id",
    "workbook_id",
    "sheet_id",
    "version_id",
    "message_id",
    "question_id",
    "project_id",
    "run_id",
    "team_id",
    "task_id",
    "submission_id",
}


@dataclass
class Route:
    path: str  # with <name> / {name} placeholders
    methods: list[str]
    api: bool
    area: str | None = None
    params: list[str] = field(default_factory=list)


def url_routes() -> list[Route]:
    """Every page of the URLconf (the API is listed from its router, the admin is Django's)."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    routes = []
    for raw, callback in walk(get_resolver().url_patterns):
        if raw.startswith(("admin/", "api/", "^api")):
            continue
        params = re.findall(r"<(?:\w+:)?(\w+)>", raw)
        # The OpenAI-compatible endpoints check the token's role themselves (the playground's area).
        area = "playground" if raw.startswith("v1/") else getattr(callback, "required_area", None)
        routes.append(Route("/" + raw, ["GET", "POST"], api=False, area=area, params=params))
    return routes


def api_routes() -> list[Route]:
    routes = []
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                auth = operation.auth_param if operation.auth_param is not NOT_SET else router.auth
                auth = auth if isinstance(auth, list | tuple) else [auth]
                area = next((a.area for a in auth if isinstance(a, AreaBearerAuth)), None)
                full = "/api" + (prefix.rstrip("/") + path if prefix else path)
                params = re.findall(r"{(?:\w+:)?(\w+)}", full)
                routes.append(Route(full, operation.methods, api=True, area=area, params=params))
    for path in ("/api/", "/api/docs", "/api/openapi.json"):
        routes.append(Route(path, ["GET"], api=True))
    return routes


ALL_ROUTES = url_routes() + api_routes()


@pytest.fixture
def world(client):
    """One class with a project run, a team, a task, a chat message; a workbook, a job, a KB
    question, a catalogue feature; all the first teacher's. And a second class's teacher."""
    teacher = UserFactory(username="tess", role="teacher")
    student = UserFactory(username="alice", role="student")
    cohort = CohortFactory(teacher=teacher, name="Physics 9B")
    cohort.students.add(student)
    other_teacher = UserFactory(username="otto", role="teacher")
    CohortFactory(teacher=other_teacher, name="Other class")
    users = {
        "anonymous": None,
        "student": student,
        "teacher": teacher,
        "researcher": UserFactory(username="rhea", role="researcher"),
        "admin": UserFactory(username="ada", role="admin"),
        "other_teacher": other_teacher,
    }
    spec = json.loads((BASE / "apps/pbl/data/clean_water.json").read_text())
    project = pbl_services.create_project(teacher, spec)
    run = ProjectRun.objects.create(project=project, cohort=cohort, status=RunStatus.OPEN, started_at=timezone.now())
    team = pbl_services.join_team(student, run, "Otters")
    task = board.add_task(student, team, "Measure the water")
    message = ChatMessage.objects.create(team=team, kind=MessageKind.LEARNER, author=student, text="Where do we start?")
    sheets = workbooks.read_upload("sales.csv", (BASE / "tests/tables/data/sales.csv").read_bytes())
    workbook = tables_services.create_workbook(teacher, "Sales", sheets, source_name="sales.csv")
    sheet = workbook.sheets.first()
    job = Job.objects.create(owner=teacher, kind="jobs.count", queue="cpu", params={"n": 1})
    kb = kbqa_services.import_kb(None, "tiny", json.loads((BASE / "tests/kbqa/data/tiny_kb.json").read_text()))
    question = kbqa_services.ask(teacher, kb, "What is the capital of France?")  # queued: no worker here
    feature = LinguisticFeature.objects.create(language="en", dimension="syntax", name="Passive", description="")
    values = {
        "job_id": job.pk,
        "workbook_id": workbook.pk,
        "sheet_id": sheet.pk,
        "version_id": sheet.current_version_id,
        "question_id": question.pk,
        "project_id": project.pk,
        "run_id": run.pk,
        "team_id": team.pk,
        "task_id": task.pk,
        "feature_id": feature.pk,
        "name": kb.name,
        "kind": "pre",
        "fmt": "csv",
        "action": "undo",
        "milestone_key": spec["stages"][0]["milestones"][0]["key"] if spec["stages"][0].get("milestones") else "m1",
    }
    # The same name means different things in two apps.
    by_app = {("pbl", "message_id"): message.pk, ("tables", "message_id"): 999_999}
    return users, values, by_app


def fill(route: Route, values: dict, by_app: dict) -> str:
    app = route.path.removeprefix("/api").split("/")[1]

    def value(name: str) -> str:
        return str(by_app.get((app, name), values.get(name, 999_999 if name.endswith("_id") else "nothing")))

    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), route.path)
    return re.sub(r"{(?:\w+:)?(\w+)}", lambda m: value(m.group(1)), path)


def visit(client, method: str, url: str, api_route: bool, headers: dict):
    if method == "GET":
        return client.get(url, headers=headers)
    # An empty body: enough to reach the checks (who may) without doing work; forms answer
    # with their errors, schemas with 422.
    if api_route:
        return client.generic(method, url, b"{}", content_type="application/json", headers=headers)
    return client.generic(method, url, b"", content_type="application/x-www-form-urlencoded", headers=headers)


def can_use(user, area: str | None) -> bool:
    from apps.accounts.permissions import can_access_area

    return area is None or can_access_area(user, area)


@pytest.mark.parametrize("role", ROLES)
def test_every_route_as_every_role(client, world, role, settings):
    settings.DEBUG = False
    users, values, by_app = world
    user = users[role]
    token_headers = {}
    if user is not None:
        client.force_login(user)
        # The OpenAI-compatible /v1 endpoints take bearer tokens only, as OpenAI clients send them.
        token_headers = {"Authorization": f"Bearer {create_api_token(user, 'matrix')[1]}"}
    problems, visited = [], 0
    # Deletions, then logging out, last: every other request still finds its objects and session.
    ordered = sorted(
        ((route, method) for route in ALL_ROUTES for method in route.methods),
        key=lambda rm: (rm[0].path == "/accounts/logout/", rm[1] == "DELETE"),
    )
    for route, method in ordered:
        url = fill(route, values, by_app)
        headers = token_headers if route.path.startswith("/v1/") else {}
        response = visit(client, method, url, route.api, headers)
        visited += 1
        status = response.status_code
        where = f"{method} {url} as {role}: {status}"
        if status >= 500:
            problems.append(where + " (server error)")
            continue
        if route.api and route.path != "/api/docs" and response.get("Content-Type", "").startswith("text/html"):
            problems.append(where + " (HTML under /api/)")
        if role == "anonymous":
            if route.path in PUBLIC or url in PUBLIC or route.path.startswith("/i18n/"):
                continue
            if route.api or route.path.startswith("/v1/"):
                if status not in (401, 405):
                    problems.append(where + " (signed out: expected 401)")
            elif not (status == 302 and "/accounts/login/" in response["Location"]) and status != 405:
                problems.append(where + " (signed out: expected a redirect to the log-in page)")
            continue
        sent_to_login = status == 302 and "/accounts/login/" in response.get("Location", "")
        if route.path != "/accounts/logout/" and (status == 401 or sent_to_login):
            problems.append(where + " (signed in, yet sent to log in)")
        if not can_use(user, route.area) and status not in (403, 405):
            problems.append(where + f" (role outside the area {route.area!r}: expected 403)")
        if (
            role == "other_teacher"
            and method == "GET"
            and set(route.params) & PRIVATE_PARAMS
            and status not in (403, 404, 405, 422)  # 422: a missing query parameter, checked first
        ):
            problems.append(where + " (another class's object: expected 403 or 404)")
    assert visited > 150
    assert not problems, f"{len(problems)} of {visited} requests:\n" + "\n".join(problems)


def test_the_matrix_sees_every_router_and_area():
    """If the generator missed a whole app or the area markers, the matrix would pass vacuously."""
    areas = {r.area for r in ALL_ROUTES}
    assert {"pbl", "lingualens", "tables", "kbqa", "jobs", "playground"} <= areas
    prefixes = {r.path.split("/")[1 if not r.api else 2] for r in ALL_ROUTES if r.path.count("/") > 1}
    assert {"pbl", "lingualens", "tables", "kbqa", "jobs", "tokens"} <= prefixes
