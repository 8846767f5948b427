"""Stored-XSS payloads in free-text fields render as text in a real browser: a dialog
handler records any alert() and must stay empty, and each payload must be visible as text
(so it was rendered, not dropped). Pages are served by Django's live server; no model or
worker is needed for rendering."""

import json
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.accounts.models import Cohort
from apps.jobs.models import Job
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PBL_DEMO = Path(__file__).resolve().parents[2] / "apps" / "pbl" / "data" / "clean_water.json"


def payload(field: str) -> str:
    # Closes quotes and tags, an event handler, a script element, a javascript: link.
    return (
        f"\"'><img src=x onerror=alert('{field}')><script>alert('{field}')</script>"
        f"<a href=javascript:alert(1)>{field}</a>"
    )


def sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])


def visit(page, url: str, fields: list[str], fired: list[str]) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    # Visible text plus what editors hold (the deliverable is a textarea's value).
    text = page.inner_text("body") + "".join(page.eval_on_selector_all("textarea", "els => els.map(e => e.value)"))
    for field in fields:
        assert f"onerror=alert('{field}')" in text, f"{field}: payload not rendered as text on {url}"
    page.click("body")  # a click on the page: handlers bound by an injected element would fire
    assert fired == [], f"script ran on {url}: {fired}"


def test_payloads_in_free_text_fields_stay_inert(page, live_server):
    from apps.kbqa.models import KnowledgeBase, Question
    from apps.pbl import board, deliverable, services
    from apps.pbl.models import ChatMessage, MessageKind, ProjectRun, RunStatus
    from apps.tables import services as tables

    fired: list[str] = []
    page.on("dialog", lambda dialog: (fired.append(dialog.message), dialog.dismiss()))
    # Control: the same payload as raw HTML does run, so the handler would see an injection.
    page.set_content(f"<body>{payload('control')}</body>")
    page.wait_for_timeout(300)
    assert "control" in fired
    fired.clear()

    # Tables: a header and cells.
    researcher = UserFactory(role="researcher")
    frame = pd.DataFrame({payload("header"): [payload("cell"), "plain"], "n": [1, 2]})
    workbook = tables.create_workbook(researcher, payload("workbook"), [("Sheet", frame)])
    sign_in(page, live_server, researcher)
    visit(page, f"{live_server.url}/tables/{workbook.pk}/", ["header", "cell"], fired)

    # PBL: project fields, team name, chat, deliverable, tasks; seen by a learner and the teacher.
    teacher = UserFactory(role="teacher")
    learner = UserFactory(role="student")
    cohort = Cohort.objects.create(teacher=teacher, name=payload("cohort"))
    cohort.students.add(learner)
    data = json.loads(PBL_DEMO.read_text())
    data["title"] = payload("project-title")
    data["driving_question"] = payload("driving-question")
    project = services.create_project(teacher, data)
    run = ProjectRun.objects.create(project=project, cohort=cohort, status=RunStatus.OPEN, started_at=timezone.now())
    team = services.join_team(learner, run, payload("team")[:80])
    ChatMessage.objects.create(team=team, kind=MessageKind.LEARNER, author=learner, text=payload("chat"))
    board.add_task(learner, team, payload("task")[:200])
    version = deliverable.get_document(team).version
    deliverable.save_document(learner, team, payload("deliverable"), base_version=version)
    page.context.clear_cookies()
    sign_in(page, live_server, learner)
    visit(page, f"{live_server.url}/pbl/teams/{team.pk}/", ["chat", "task", "deliverable", "driving-question"], fired)
    page.context.clear_cookies()
    sign_in(page, live_server, teacher)
    visit(page, f"{live_server.url}/pbl/runs/{run.pk}/dashboard/", ["project-title"], fired)

    # KBQA: a question's text.
    asker = UserFactory(role="student")
    kb = KnowledgeBase.objects.create(name="xss-kb", title=payload("kb-title"), data={})
    job = Job.objects.create(owner=asker, kind="kbqa.ask", queue="interactive")  # queued: the page polls
    question = Question.objects.create(owner=asker, kb=kb, text=payload("question"), job=job)
    page.context.clear_cookies()
    sign_in(page, live_server, asker)
    visit(page, f"{live_server.url}/kbqa/questions/{question.pk}/", ["question"], fired)
