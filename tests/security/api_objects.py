"""Owned objects behind the JSON API's path parameters, for the ownership suite.

Each builder makes an object that `owner` may use and `stranger` (a user of a role that
could own such objects) may not, and returns the path values that name it. Routes are
read from the API's OpenAPI schema; every route with a path parameter must appear in
API_OWNED or in API_NOT_OWNED (with the reason), so a new route cannot slip past."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from django.utils import timezone

from apps.accounts.models import Cohort, User
from apps.accounts.services import create_api_token
from apps.jobs.models import Job
from tests.factories import UserFactory

PBL_DEMO = Path(__file__).resolve().parents[2] / "apps" / "pbl" / "data" / "clean_water.json"


@dataclass
class Case:
    owner: User
    stranger: User
    values: dict[str, object]


def token(user: User) -> str:
    return create_api_token(user, "ownership-suite")[1]


def job() -> Case:
    owner, stranger = UserFactory(role="student"), UserFactory(role="student")
    return Case(owner, stranger, {"job_id": Job.objects.create(owner=owner, kind="jobs.count", queue="cpu").pk})


def generation() -> Case:
    from apps.inference.models import Generation

    owner, stranger = UserFactory(role="researcher"), UserFactory(role="researcher")
    made = Job.objects.create(owner=owner, kind="inference.generate", queue="interactive", status="done")
    Generation.objects.create(job=made, model_name="smollm2-135m", messages=[{"role": "user", "content": "hi"}])
    return Case(owner, stranger, {"job_id": made.pk})


def steering() -> Case:
    from apps.lingualens import services
    from apps.lingualens.models import SAE, ActivationRun, SteeringRun

    owner, stranger = UserFactory(role="researcher"), UserFactory(role="researcher")
    corpus = services.create_corpus(owner, "c", "test", ["a"])
    activation_run = ActivationRun.objects.create(owner=owner, corpus=corpus, layers=[3])
    sae = SAE.objects.create(owner=owner, run=activation_run, slug="own", layer=3, width=16, k=4)
    made = Job.objects.create(owner=owner, kind=services.STEER_KIND, queue="interactive", status="done")
    SteeringRun.objects.create(owner=owner, job=made, sae=sae, prompt="Hi", interventions=[])
    return Case(owner, stranger, {"job_id": made.pk})


def _pbl_world():
    from apps.pbl import services
    from apps.pbl.models import ProjectRun, RunStatus

    teacher = UserFactory(role="teacher")
    cohort = Cohort.objects.create(teacher=teacher, name="Ownership class")
    member, other = UserFactory(role="student"), UserFactory(role="student")
    cohort.students.add(member, other)
    project = services.create_project(teacher, json.loads(PBL_DEMO.read_text()))
    run = ProjectRun.objects.create(project=project, cohort=cohort, status=RunStatus.OPEN, started_at=timezone.now())
    team = services.join_team(member, run, "Otters")
    services.join_team(other, run, "Herons")
    return teacher, member, other, run, team


def pbl_team() -> Case:
    """A team's workspace: a learner of another team in the same run is the stranger."""
    from apps.pbl import board
    from apps.pbl.models import ChatMessage, MessageKind, MilestoneSubmission

    _teacher, member, other, run, team = _pbl_world()
    task = board.add_task(member, team, "Measure the taps")
    message = ChatMessage.objects.create(team=team, kind=MessageKind.LEARNER, author=member, text="hello")
    stage = json.loads(PBL_DEMO.read_text())["stages"][0]
    milestone = stage["milestones"][0]["key"]
    submission = MilestoneSubmission.objects.create(
        team=team, stage_key=stage["key"], milestone_key=milestone, submitted_by=member, text="draft"
    )
    return Case(
        member,
        other,
        {
            "team_id": team.pk,
            "task_id": task.pk,
            "milestone_key": milestone,
            "message_id": message.pk,
            "submission_id": submission.pk,
        },
    )


def pbl_teacher() -> Case:
    """A run, its project and its submissions: another teacher is the stranger."""
    from apps.pbl.models import MilestoneSubmission

    teacher, member, _other, run, team = _pbl_world()
    submission = MilestoneSubmission.objects.create(
        team=team, stage_key="define", milestone_key="problem", submitted_by=member, text="draft"
    )
    stranger = UserFactory(role="teacher")
    Cohort.objects.create(teacher=stranger, name="Another class")
    return Case(teacher, stranger, {"run_id": run.pk, "project_id": run.project_id, "submission_id": submission.pk})


def pbl_learner_run() -> Case:
    """A run's exams and teams: a student outside the run's class is the stranger."""
    _teacher, member, _other, run, _team = _pbl_world()
    return Case(member, UserFactory(role="student"), {"run_id": run.pk, "kind": "pre"})


def tables() -> Case:
    from apps.tables import services
    from apps.tables.models import TableMessage

    owner, stranger = UserFactory(role="researcher"), UserFactory(role="researcher")
    frame = pd.DataFrame({"city": ["Oslo", "Lima"], "people": [700, 10000]})
    workbook = services.create_workbook(owner, "cities", [("Cities", frame)])
    sheet = workbook.sheets.get()
    message = TableMessage.objects.create(
        workbook=workbook,
        sheet=sheet,
        role="assistant",
        mode="code",
        code="result = df",
        based_on=sheet.current_version,
    )
    version = sheet.current_version_id
    values = {
        "sheet_id": sheet.pk,
        "message_id": message.pk,
        "version_id": version,
        "action": "undo",
        "a": version,
        "b": version,
    }
    return Case(owner, stranger, values)


def kbqa_question() -> Case:
    from apps.kbqa.models import KnowledgeBase, Question

    owner, stranger = UserFactory(role="student"), UserFactory(role="student")
    kb = KnowledgeBase.objects.create(name="ownership-kb", title="Ownership KB", data={})
    return Case(owner, stranger, {"question_id": Question.objects.create(owner=owner, kb=kb, text="How many?").pk})


def api_token() -> Case:
    owner, stranger = UserFactory(role="student"), UserFactory(role="student")
    made, _raw = create_api_token(owner, "laptop")
    return Case(owner, stranger, {"token_id": made.pk})


PBL_TEAM_ROUTES = [
    "/api/pbl/teams/{team_id}/workspace",
    "/api/pbl/teams/{team_id}/messages",
    "/api/pbl/messages/{message_id}/cancel",
    "/api/pbl/messages/{message_id}/retry",
    "/api/pbl/messages/{message_id}/feedback",
    "/api/pbl/teams/{team_id}/document",
    "/api/pbl/teams/{team_id}/document/versions",
    "/api/pbl/teams/{team_id}/tasks",
    "/api/pbl/teams/{team_id}/tasks/{task_id}",
    "/api/pbl/teams/{team_id}/milestones/{milestone_key}/submit",
    "/api/pbl/submissions/{submission_id}",
]
PBL_TEACHER_ROUTES = [
    "/api/pbl/runs/{run_id}/dashboard",
    "/api/pbl/runs/{run_id}/events",
    "/api/pbl/runs/{run_id}/status",
    "/api/pbl/runs/{run_id}/teams",
    "/api/pbl/runs/{run_id}/thresholds",
    "/api/pbl/submissions/{submission_id}/override",
    "/api/pbl/projects/{project_id}/export",
]
TABLES_ROUTES = [
    "/api/tables/sheets/{sheet_id}",
    "/api/tables/sheets/{sheet_id}/ask",
    "/api/tables/sheets/{sheet_id}/run",
    "/api/tables/messages/{message_id}",
    "/api/tables/messages/{message_id}/run",
    "/api/tables/sheets/{sheet_id}/versions",
    "/api/tables/sheets/{sheet_id}/diff",
    "/api/tables/sheets/{sheet_id}/{action}",
    "/api/tables/versions/{version_id}/download",
]

API_OWNED: dict[str, Callable[[], Case]] = {
    "/api/jobs/{job_id}": job,
    "/api/jobs/{job_id}/cancel": job,
    "/api/generations/{job_id}": generation,
    "/api/lingualens/steer/{job_id}": steering,
    "/api/tokens/{token_id}": api_token,
    "/api/kbqa/questions/{question_id}": kbqa_question,
    "/api/kbqa/questions/{question_id}/rerun": kbqa_question,
    "/api/pbl/runs/{run_id}/exams/{kind}": pbl_learner_run,
    "/api/pbl/runs/{run_id}/team": pbl_learner_run,
    **dict.fromkeys(PBL_TEAM_ROUTES, pbl_team),
    **dict.fromkeys(PBL_TEACHER_ROUTES, pbl_teacher),
    **dict.fromkeys(TABLES_ROUTES, tables),
}

# Routes with a path parameter that names no private object, and why.
API_NOT_OWNED: dict[str, str] = {
    "/api/kbqa/kbs/{name}": "knowledge bases are shared reference data, readable by every KBQA user",
    "/api/kbqa/parsers/{parser_id}/dataset": "trained parsers are a lab-wide resource (any researcher)",
    "/api/kbqa/parsers/{parser_id}/evaluations": "trained parsers are a lab-wide resource (any researcher)",
    "/api/kbqa/evaluations/{evaluation_id}": "parser evaluations are a lab-wide resource (any researcher)",
    "/api/lingualens/catalogue/features/{feature_id}": "the linguistic feature catalogue is shared",
    "/api/lingualens/catalogue/features/{feature_id}/pairs": "the linguistic feature catalogue is shared",
    "/api/lingualens/catalogue/pairs/{pair_id}": "the linguistic feature catalogue is shared",
    "/api/lingualens/saes/{slug}": "SAEs are a lab-wide resource (any researcher)",
    "/api/lingualens/saes/{slug}/restart": "SAEs are a lab-wide resource (any researcher)",
    "/api/lingualens/saes/{slug}/score": "SAEs are a lab-wide resource (any researcher)",
    "/api/lingualens/saes/{slug}/scores": "SAEs are a lab-wide resource (any researcher)",
    "/api/lingualens/latents/{feature_id}": "latent pages are linkable and shared",
    "/api/lingualens/latents/{feature_id}/note": "latent notes are shared lab notes",
}
