"""The project JSON format: the shipped demos are valid; bad files get errors that say where."""

import json

import pytest
from django.core.exceptions import ValidationError

from apps.pbl import schema
from tests.pbl.conftest import DATA, demo


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.stem)
def test_demo_projects_are_complete(path):
    spec = schema.parse_project_json(path.read_bytes())
    assert len(spec["stages"]) >= 3
    assert all(stage["milestones"] and stage["deliverable"]["prompt"] for stage in spec["stages"])
    assert len(spec["agents"]) >= 2
    assert spec["resources"]
    assert spec["exams"]["pre"]
    assert spec["exams"]["post"]
    kinds = {q["kind"] for q in spec["exams"]["pre"] + spec["exams"]["post"]}
    assert kinds == {"mc", "short"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("driving_question"), "'driving_question' is a required property"),
        (lambda d: d["stages"][1]["milestones"][0].update(criteria=[]), "stages[1].milestones[0].criteria"),
        (lambda d: d["agents"][0].update(role="ghostwriter"), "agents[0].role"),
        (lambda d: d["agents"].append(dict(d["agents"][0])), "agents[3].name: 'Nova' is used twice"),
        (lambda d: d["exams"]["pre"][0].update(answer=9), "exams.pre[0].answer"),
        (lambda d: d["exams"]["post"][3].pop("rubric"), "exams.post[3]: a short-answer question needs a rubric"),
        (lambda d: d["agents"][1].update(strictness="extreme"), "agents[1].strictness"),
    ],
)
def test_errors_name_the_place(change, expected):
    data = demo()
    change(data)
    with pytest.raises(ValidationError) as caught:
        schema.validate_project(data)
    assert expected in caught.value.messages[0]


def test_not_json_and_too_big():
    with pytest.raises(ValidationError, match="not valid JSON"):
        schema.parse_project_json(b"{nope")
    with pytest.raises(ValidationError, match="limit"):
        schema.parse_project_json(b" " * (schema.MAX_PROJECT_BYTES + 1))


def test_export_round_trips(project):
    exported = schema.export_project(project)
    assert schema.validate_project(json.loads(json.dumps(exported))) == project.spec
