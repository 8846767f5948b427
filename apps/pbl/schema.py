"""The project JSON format: validation with errors that name the place, import, export.

A project file looks like the demo projects in apps/pbl/data/. Keys (stage, milestone,
criterion, question) are short slugs so logs and exports stay readable."""

import json
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError

FORMAT = "atrium-pbl-project/1"
MAX_PROJECT_BYTES = 512 * 1024
STRICTNESS = ["low", "medium", "high"]

_KEY = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 4000}
_CRITERION = {
    "type": "object",
    "required": ["key", "text"],
    "additionalProperties": False,
    "properties": {
        "key": _KEY,
        "text": _TEXT,
        "keywords": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 30},
        "min_words": {"type": "integer", "minimum": 0, "maximum": 5000},
    },
}
_MILESTONE = {
    "type": "object",
    "required": ["key", "title", "criteria"],
    "additionalProperties": False,
    "properties": {
        "key": _KEY,
        "title": _TEXT,
        "description": {"type": "string"},
        "criteria": {"type": "array", "items": _CRITERION, "minItems": 1, "maxItems": 10},
    },
}
_STAGE = {
    "type": "object",
    "required": ["key", "title", "deliverable", "milestones"],
    "additionalProperties": False,
    "properties": {
        "key": _KEY,
        "title": _TEXT,
        "goal": {"type": "string"},
        "expected_minutes": {"type": "integer", "minimum": 1, "maximum": 10000},
        "deliverable": {
            "type": "object",
            "required": ["title", "prompt"],
            "additionalProperties": False,
            "properties": {"title": _TEXT, "prompt": _TEXT, "template": {"type": "string"}},
        },
        "milestones": {"type": "array", "items": _MILESTONE, "minItems": 1, "maxItems": 10},
        "tasks": {"type": "array", "items": _TEXT, "maxItems": 20},
    },
}
_AGENT = {
    "type": "object",
    "required": ["name", "role", "persona", "may", "must_not"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{1,19}$"},
        "role": {"type": "string", "enum": ["researcher", "critic", "domain_expert", "teammate", "tutor"]},
        "persona": _TEXT,
        "may": {"type": "array", "items": _TEXT, "minItems": 1},
        "must_not": {"type": "array", "items": _TEXT, "minItems": 1},
        "strictness": {"type": "string", "enum": STRICTNESS},
    },
}
_QUESTION = {
    "type": "object",
    "required": ["key", "kind", "prompt"],
    "additionalProperties": False,
    "properties": {
        "key": _KEY,
        "kind": {"type": "string", "enum": ["mc", "short"]},
        "prompt": _TEXT,
        "options": {"type": "array", "items": _TEXT, "minItems": 2, "maxItems": 8},
        "answer": {"type": "integer", "minimum": 0},
        "points": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
        "rubric": {
            "type": "object",
            "required": ["keywords"],
            "additionalProperties": False,
            "properties": {
                "keywords": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                "min_matches": {"type": "integer", "minimum": 1},
                "model_answer": {"type": "string"},
            },
        },
    },
}
_EXAM = {"type": "array", "items": _QUESTION, "minItems": 1, "maxItems": 50}
PROJECT_SCHEMA = {
    "type": "object",
    "required": ["title", "driving_question", "goals", "stages", "agents", "exams"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "driving_question": _TEXT,
        "goals": {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": 20},
        "stages": {"type": "array", "items": _STAGE, "minItems": 1, "maxItems": 12},
        "resources": {
            "type": "array",
            "maxItems": 40,
            "items": {
                "type": "object",
                "required": ["title", "text"],
                "additionalProperties": False,
                "properties": {"title": _TEXT, "text": {"type": "string", "minLength": 1, "maxLength": 20000}},
            },
        },
        "agents": {"type": "array", "items": _AGENT, "minItems": 1, "maxItems": 8},
        "exams": {
            "type": "object",
            "required": ["pre", "post"],
            "additionalProperties": False,
            "properties": {"pre": _EXAM, "post": _EXAM},
        },
    },
}


def _where(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the project"


def _unique(items: list[dict], field: str, where: str) -> None:
    seen = set()
    for index, item in enumerate(items):
        value = str(item[field]).lower()
        if value in seen:
            raise ValidationError(f"{where}[{index}].{field}: {item[field]!r} is used twice; it must be unique")
        seen.add(value)


def validate_project(data: Any) -> dict:
    """The project as stored, or ValidationError naming the first problem and where it is."""
    if not isinstance(data, dict):
        raise ValidationError("A project file must be a JSON object.")
    validator = jsonschema.Draft202012Validator(PROJECT_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    if errors:
        error = errors[0]
        raise ValidationError(f"{_where(error.absolute_path)}: {error.message}")
    _unique(data["stages"], "key", "stages")
    _unique(data["agents"], "name", "agents")
    for s_index, stage in enumerate(data["stages"]):
        _unique(stage["milestones"], "key", f"stages[{s_index}].milestones")
        for m_index, milestone in enumerate(stage["milestones"]):
            _unique(milestone["criteria"], "key", f"stages[{s_index}].milestones[{m_index}].criteria")
    for kind in ("pre", "post"):
        _unique(data["exams"][kind], "key", f"exams.{kind}")
        for index, question in enumerate(data["exams"][kind]):
            where = f"exams.{kind}[{index}]"
            if question["kind"] == "mc":
                if "options" not in question or "answer" not in question:
                    raise ValidationError(f"{where}: a multiple-choice question needs options and answer")
                if question["answer"] >= len(question["options"]):
                    raise ValidationError(f"{where}.answer: {question['answer']} is not an option index")
            elif "rubric" not in question:
                raise ValidationError(f"{where}: a short-answer question needs a rubric with keywords")
    cleaned = json.loads(json.dumps(data))  # a plain copy
    cleaned["format"] = FORMAT
    cleaned.setdefault("resources", [])
    for agent in cleaned["agents"]:
        agent.setdefault("strictness", "medium")
    for stage in cleaned["stages"]:
        stage.setdefault("expected_minutes", 20)
        stage.setdefault("tasks", [])
        stage.setdefault("goal", "")
    return cleaned


def parse_project_json(raw: bytes | str) -> dict:
    if len(raw) > MAX_PROJECT_BYTES:
        raise ValidationError(f"The file is {len(raw) // 1024} KB; the limit is {MAX_PROJECT_BYTES // 1024} KB.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"This is not valid JSON: {exc}") from None
    return validate_project(data)


def export_project(project) -> dict:
    return {"format": FORMAT, **project.spec, "title": project.title, "driving_question": project.driving_question}
