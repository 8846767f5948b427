"""A teacher builds a project in the form editor in a real browser (issue 15): rows added over
htmx, an error shown beside its field with nothing typed lost, then saved and reopened."""

import pytest
from playwright.sync_api import expect

from apps.pbl.models import Project
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def fill(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f'[name="{name}"]')
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def test_teacher_builds_a_project_in_the_form_editor(page, log_in, live_stack, screenshot):
    teacher = UserFactory(username="e2e-tessa", role="teacher")
    log_in(teacher)
    page.goto(f"{live_stack.url}/pbl/")
    page.click("#new-project")
    expect(page.locator("#editor-form")).to_be_visible()
    fill(
        page,
        {
            "project-title": "Paper bridges",
            "project-driving_question": "How can we build a paper bridge that holds a book?",
            "project-goals": "Test designs\nExplain forces",
            "stages-0-key": "Build It",  # not a key: the error will say so beside the field
            "stages-0-title": "Build and test",
            "stages-0-deliverable_title": "Test report",
            "stages-0-deliverable_prompt": "Report what held, what failed and why.",
            "criteria-0-stage": "build",
            "criteria-0-milestone": "report",
            "criteria-0-milestone_title": "A test report",
            "criteria-0-key": "load",
            "criteria-0-text": "States the load each design held",
            "criteria-0-keywords": "grams, load, held",
            "agents-0-name": "Ada",
            "agents-0-role": "critic",
            "agents-0-persona": "An engineer who asks why.",
            "agents-0-may": "ask for evidence\npoint out weak tests",
            "agents-0-must_not": "write the report",
            "agents-0-strictness": "high",
            "questions-0-key": "q1",
            "questions-0-kind": "short",
            "questions-0-prompt": "What makes a bridge strong?",
            "questions-0-keywords": "triangle, shape",
        },
    )
    # More rows over htmx, without a page load: a second criterion, a resource, the post exam.
    marker = page.evaluate("window.__editorMarker = Math.random()")
    page.click('button[data-add="criteria"]')
    expect(page.locator('[name="criteria-1-key"]')).to_be_visible()
    expect(page.locator("#id_criteria-TOTAL_FORMS")).to_have_value("2")
    page.click('button[data-add="resources"]')
    page.click('button[data-add="questions"]')
    expect(page.locator('[name="questions-1-key"]')).to_be_visible()
    assert page.evaluate("window.__editorMarker") == marker
    fill(
        page,
        {
            "criteria-1-stage": "build",
            "criteria-1-milestone": "report",
            "criteria-1-milestone_title": "A test report",
            "criteria-1-key": "why",
            "criteria-1-text": "Explains why the strongest design held",
            "criteria-1-keywords": "triangle, force",
            "resources-0-title": "Forces in bridges",
            "resources-0-text": "Triangles spread a load across their sides.",
            "questions-1-exam": "post",
            "questions-1-key": "q1",
            "questions-1-kind": "mc",
            "questions-1-prompt": "Which shape spreads a load best?",
            "questions-1-options": "Square\nTriangle\nCircle",
            "questions-1-answer": "2",
        },
    )
    page.click("#editor-form button[type=submit]")
    stage_key = page.locator('[name="stages-0-key"]').locator("xpath=..")
    expect(stage_key.locator(".field-error")).to_contain_text("lower-case")
    expect(page.locator('[name="resources-0-text"]')).to_have_value("Triangles spread a load across their sides.")
    screenshot("pbl-editor-error")
    assert not Project.objects.exists()

    page.fill('[name="stages-0-key"]', "build")
    page.click("#editor-form button[type=submit]")
    expect(page.locator(".messages, .message").first).to_contain_text("Created")
    project = Project.objects.get(title="Paper bridges")
    criteria = project.stages[0]["milestones"][0]["criteria"]
    assert [c["key"] for c in criteria] == ["load", "why"]
    assert project.spec["resources"] == [
        {"title": "Forces in bridges", "text": "Triangles spread a load across their sides."}
    ]
    assert project.spec["exams"]["post"][0]["answer"] == 1
    assert project.agent("Ada")["must_not"] == ["write the report"]
    # Reopened, the editor shows what was saved.
    expect(page.locator('[name="criteria-1-text"]')).to_have_value("Explains why the strongest design held")
    screenshot("pbl-editor-saved")
