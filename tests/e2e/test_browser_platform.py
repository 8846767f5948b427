"""A real browser (Debian's chromium) against real daphne, Redis, Postgres and Celery."""

import re

import pytest
from playwright.sync_api import expect

from apps.jobs import services as job_services
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AREAS_BY_ROLE = {
    "student": {"pbl", "tables", "kbqa"},
    "teacher": {"pbl", "tables", "kbqa"},
    "researcher": {"lingualens", "tables", "kbqa"},
    "admin": {"pbl", "lingualens", "tables", "kbqa"},
}


@pytest.mark.parametrize("role", list(AREAS_BY_ROLE))
def test_each_role_sees_its_navigation(page, log_in, live_stack, screenshot, role):
    user = UserFactory(username=f"e2e-{role}", role=role)
    log_in(user)
    nav_areas = set(page.locator("nav.areas a[data-area]").evaluate_all("els => els.map(e => e.dataset.area)"))
    assert nav_areas & {"pbl", "lingualens", "tables", "kbqa"} == AREAS_BY_ROLE[role]
    expect(page.locator(".user-chip")).to_contain_text(user.username)
    screenshot(f"home-{role}")
    hidden = {"pbl", "lingualens"} - AREAS_BY_ROLE[role]
    for area in hidden:
        response = page.goto(f"{live_stack.url}/{area}/")
        assert response.status == 403
        expect(page.locator("h1")).to_contain_text("not open to your role")


def test_demo_job_progress_moves_live_and_survives_reload(page, log_in, live_stack, screenshot):
    user = UserFactory(username="e2e-runner", role="student")
    log_in(user)
    # The demo job is no product feature (no form on the Jobs page); tests start it directly.
    job = job_services.create_job(user, "jobs.count", {"n": 8, "delay": 0.4})
    page.goto(f"{live_stack.url}/jobs/")
    expect(page.locator("#count-form")).to_have_count(0)
    page.click(f"a[href='/jobs/{job.pk}/']")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    bar = page.locator(".progress .bar")
    widths = set()
    status = page.locator(".job-status")
    for _ in range(80):
        widths.add(bar.evaluate("el => el.style.width"))
        if status.get_attribute("data-status") == "succeeded":
            break
        page.wait_for_timeout(150)
    expect(status).to_have_attribute("data-status", "succeeded", timeout=20_000)
    # The bar moved through intermediate values pushed over the WebSocket, not only 0% and 100%.
    intermediate = {w for w in widths if w not in ("0%", "100%")}
    assert len(intermediate) >= 2, widths
    screenshot("job-succeeded")
    page.reload()
    expect(page.locator(".job-status")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#job-result")).to_contain_text("counted 8")


def test_language_switch_to_chinese(page, log_in, live_stack, screenshot):
    log_in(UserFactory(username="e2e-zh", role="teacher"))
    page.select_option("select[name=language]", "zh-hans")
    page.wait_for_load_state()
    expect(page.locator("h1")).to_contain_text("欢迎")
    screenshot("home-zh")
