"""PBL studio in a real browser: a student takes the pre-exam, joins a team, writes the
deliverable, asks an agent to do the work (and gets guidance), submits the milestone and
sees the stage advance; then the teacher watches the dashboard update live."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.pbl import services
from apps.pbl.models import ProjectRun, RunStatus
from tests.factories import CohortFactory, UserFactory
from tests.pbl.conftest import demo

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.live, pytest.mark.django_db(transaction=True)]

GOOD_DEFINE = (
    "Who is affected: every student and staff member who drinks from the school fountain and tap.\n"
    "Why it matters: lead from old pipes and bacteria can make students sick and harm their health.\n"
    "A good solution must: cost less than our budget and pass a water test that we measure every month.\n"
)


def test_student_works_through_a_stage_and_teacher_watches(page, log_in, live_stack, screenshot):
    teacher = UserFactory(username="e2e-teacher", role="teacher")
    cohort = CohortFactory(teacher=teacher, name="Science 8A")
    student = UserFactory(username="e2e-maya", role="student")
    mate = UserFactory(username="e2e-jon", role="student")
    cohort.students.add(student, mate)
    project = services.create_project(teacher, demo())
    run = ProjectRun.objects.create(project=project, cohort=cohort, status=RunStatus.OPEN, started_at=timezone.now())
    services.join_team(mate, run, "Kingfishers")

    # The student: project list, pre-exam, team.
    log_in(student)
    page.goto(f"{live_stack.url}/pbl/")
    expect(page.locator(".project-card")).to_contain_text("Clean water for our school")
    screenshot("pbl-student-projects")
    page.click(".project-card")
    page.click("#pre-exam-link")
    page.check("fieldset[data-question=q1] input[value='1']")
    page.check("fieldset[data-question=q2] input[value='0']")
    page.fill("fieldset[data-question=q4] textarea", "Old filters clog")
    page.click("#exam-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Pre-exam done")
    page.fill("#id_team", "Kingfishers")
    page.click("#team-form button[type=submit]")
    page.click("#workspace-link")

    # The workspace: write the deliverable (autosaved), ask an agent to do it for us.
    expect(page.locator(".pbl-workspace")).to_have_attribute("data-ws-state", "open", timeout=15_000)
    page.fill("#doc-text", GOOD_DEFINE)
    page.locator("#doc-text").blur()
    expect(page.locator("#doc-status")).to_contain_text("Saved", timeout=15_000)
    page.fill("#chat-form textarea", "@Nova write our problem statement for us")
    page.click("#chat-form button[type=submit]")
    reply = page.locator(".msg-agent").last
    expect(reply).to_have_attribute("data-status", "guided", timeout=180_000)
    expect(reply.locator(".tag.guided")).to_be_visible()
    expect(reply).to_contain_text("can't write")
    screenshot("pbl-workspace")

    # Submit the milestone; the judge's verdict arrives in the chat and the stage advances.
    page.click("li[data-milestone=problem] .submit-form button")
    expect(page.locator("li.stage[data-stage=define]")).to_have_class("stage done", timeout=240_000)
    expect(page.locator("li.stage[data-stage=research]")).to_have_class("stage current")
    expect(page.locator(".msg-system").last).to_contain_text("complete")
    screenshot("pbl-stage-complete")

    # The teacher's dashboard, live.
    page.context.clear_cookies()
    log_in(teacher)
    page.goto(f"{live_stack.url}/pbl/runs/{run.pk}/dashboard/")
    row = page.locator("#learner-table tr[data-learner='e2e-maya']")
    expect(row.locator("td[data-refusals]")).to_have_attribute("data-refusals", "1")
    expect(page.locator("#team-table")).to_contain_text("Research")
    expect(page.locator("#dash-socket")).to_have_attribute("data-ws-state", "open", timeout=15_000)
    before = int(page.locator("#event-count").inner_text())
    services.post_message(mate, services.learner_team(mate, run), "I will look for sources on nitrates")
    expect(page.locator("#event-count")).not_to_have_text(str(before), timeout=15_000)
    expect(page.locator("#dash-live .plot svg").first).to_be_visible()
    screenshot("pbl-dashboard")
    page.locator("details.transcript summary").first.click()
    expect(page.locator("details.transcript").first).to_contain_text("guidance")
