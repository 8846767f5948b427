"""The teacher's form editor (issue 15): a project round-trips through the forms unchanged,
errors land beside the field they are about, rows are added over htmx, JSON stays."""

import html
import json
import re

import pytest

from apps.pbl import editor, schema
from apps.pbl.models import Project
from tests.pbl.conftest import demo

pytestmark = pytest.mark.django_db


def as_post(page: str) -> dict:
    """What a browser submits for the editor form on the page: every input, textarea and select."""
    form = page[page.index('id="editor-form"') : page.index("</form>", page.index('id="editor-form"'))]
    data: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form):
        data[name] = value
    for attrs in re.findall(r"<input([^>]*)>", form):
        if 'type="checkbox"' in attrs:
            name = re.search(r'name="([^"]+)"', attrs).group(1)
            data.pop(name, None)
            if "checked" in attrs:
                data[name] = "on"
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        data[name] = value[1:] if value.startswith("\n") else value
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', options)
        data[name] = chosen.group(1) if chosen else re.search(r'<option value="([^"]*)"', options).group(1)
    return {name: html.unescape(value) for name, value in data.items()}


@pytest.mark.parametrize("name", ["clean_water", "pocket_park"])
def test_a_project_saved_through_the_forms_is_unchanged(name, teacher, client_for):
    client = client_for(teacher)
    spec = schema.validate_project(demo(name))
    project = Project.objects.create(
        owner=teacher, title=spec["title"], driving_question=spec["driving_question"], spec=spec
    )
    page = client.get(f"/pbl/projects/{project.pk}/").content.decode()
    response = client.post(f"/pbl/projects/{project.pk}/", as_post(page))
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert project.spec == spec


def test_errors_are_shown_beside_their_field_and_nothing_typed_is_lost(teacher, client_for):
    client = client_for(teacher)
    spec = schema.validate_project(demo())
    project = Project.objects.create(
        owner=teacher, title=spec["title"], driving_question=spec["driving_question"], spec=spec
    )
    data = as_post(client.get(f"/pbl/projects/{project.pk}/").content.decode())
    data["questions-0-answer"] = "9"  # there are four options
    data["project-title"] = "Clean water, second try"
    response = client.post(f"/pbl/projects/{project.pk}/", data)
    assert response.status_code == 422
    page = response.content.decode()
    question = page[page.index('data-kind="questions" data-index="0"') :][:4000]
    assert re.search(r'name="questions-0-answer".*?class="field-error"[^>]*>There are only 4 options.', question, re.S)
    assert 'value="Clean water, second try"' in page  # kept

    # Fields right, rows in conflict: a criterion key used twice in one milestone, marked on the later row.
    data["questions-0-answer"] = "2"
    data["criteria-1-key"] = data["criteria-0-key"]
    page = client.post(f"/pbl/projects/{project.pk}/", data).content.decode()
    row = page[page.index('data-kind="criteria" data-index="1"') : page.index('data-kind="criteria" data-index="2"')]
    assert re.search(r'name="criteria-1-key".*?class="field-error"[^>]*>[^<]*used twice', row, re.S)
    first = page[page.index('data-kind="criteria" data-index="0"') : page.index('data-kind="criteria" data-index="1"')]
    assert "field-error" not in first
    project.refresh_from_db()
    assert project.title == spec["title"]  # nothing saved


def test_a_new_project_from_blank_forms(teacher, client_for):
    client = client_for(teacher)
    page = client.get("/pbl/projects/new/").content.decode()
    data = as_post(page)
    data.update(
        {
            "project-title": "Bridges",
            "project-driving_question": "How can we build a bridge from paper that holds a book?",
            "project-goals": "Test designs\nExplain forces",
            "stages-0-key": "build",
            "stages-0-title": "Build and test",
            "stages-0-expected_minutes": "30",
            "stages-0-deliverable_title": "Test report",
            "stages-0-deliverable_prompt": "Report what held and why.",
            "criteria-0-stage": "build",
            "criteria-0-milestone": "report",
            "criteria-0-milestone_title": "A test report",
            "criteria-0-key": "load",
            "criteria-0-text": "States the load each design held",
            "criteria-0-keywords": "grams, load, held",
            "agents-0-name": "Ada",
            "agents-0-role": "critic",
            "agents-0-persona": "An engineer who asks why.",
            "agents-0-may": "ask for evidence",
            "agents-0-must_not": "write the report",
            "agents-0-strictness": "high",
            "questions-0-exam": "pre",
            "questions-0-key": "q1",
            "questions-0-kind": "short",
            "questions-0-prompt": "What makes a bridge strong?",
            "questions-0-keywords": "triangle, shape",
        }
    )
    response = client.post("/pbl/projects/new/", data)
    assert response.status_code == 422  # the post exam is missing: said at the top, nothing lost
    assert "exams.post" in response.content.decode()
    data.update(
        {
            "questions-TOTAL_FORMS": "2",
            "questions-1-exam": "post",
            "questions-1-key": "q1",
            "questions-1-kind": "mc",
            "questions-1-prompt": "Which shape is strongest?",
            "questions-1-options": "Square\nTriangle",
            "questions-1-answer": "2",
        }
    )
    response = client.post("/pbl/projects/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    project = Project.objects.get(title="Bridges")
    assert project.stages[0]["milestones"][0]["criteria"][0]["keywords"] == ["grams", "load", "held"]
    assert project.spec["exams"]["post"][0]["answer"] == 1
    assert project.agent("Ada")["strictness"] == "high"


def test_add_row_returns_a_blank_row_and_the_new_count(teacher, client_for):
    response = client_for(teacher).get("/pbl/projects/editor-row/", {"kind": "agents", "agents-TOTAL_FORMS": "3"})
    page = response.content.decode()
    assert 'name="agents-3-name"' in page
    assert 'id="id_agents-TOTAL_FORMS" value="4"' in page or 'value="4" id="id_agents-TOTAL_FORMS"' in page
    assert "hx-swap-oob" in page
    assert client_for(teacher).get("/pbl/projects/editor-row/", {"kind": "nope"}).status_code == 404


def test_json_import_and_export_are_kept(teacher, client_for):
    client = client_for(teacher)
    spec = schema.validate_project(demo())
    project = Project.objects.create(
        owner=teacher, title=spec["title"], driving_question=spec["driving_question"], spec=spec
    )
    exported = json.loads(client.get(f"/pbl/projects/{project.pk}/export/").content)
    exported["title"] = "Renamed by JSON"
    assert client.post(f"/pbl/projects/{project.pk}/", {"json": json.dumps(exported)}).status_code == 302
    project.refresh_from_db()
    assert project.title == "Renamed by JSON"
    bad = client.post(f"/pbl/projects/{project.pk}/", {"json": "{not json"})
    assert 'id="json-error"' in bad.content.decode()
    assert editor.initial_from_spec(project.spec | {"title": project.title})["project"]["title"] == "Renamed by JSON"
