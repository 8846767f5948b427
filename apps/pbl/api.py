"""JSON API for PBL studio (mounted under /api/ by config/api.py). Every student action
(join, workspace, chat, document, tasks, milestones, exams) and the teacher's dashboard
and event export. The same service functions as the pages decide who may do what."""

import json

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from ninja import Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict, create_model

from apps.accounts import services as account_services
from apps.accounts.api_area import area_auth
from apps.accounts.models import Cohort
from apps.pbl import board, dashboard, deliverable, events, exams, milestones, present, replies, schema, services
from apps.pbl.models import ChatMessage, MilestoneSubmission, Project, ProjectRun, Team
from apps.pbl.orchestrator import DEFAULT_THRESHOLDS
from apps.pbl.present import message_out, submission_out, workspace_out

router = Router(tags=["pbl"], auth=area_auth("pbl"))  # errors: apps/core/errors.py


def get_run(run_id: int) -> ProjectRun:
    run = ProjectRun.objects.select_related("project", "cohort").filter(pk=run_id).first()
    if run is None:
        raise HttpError(404, "No such project run")
    return run


def is_teacher_of(request, team: Team) -> bool:
    return services.is_run_teacher(request.auth, team.run)


def get_message(request, message_id: int) -> ChatMessage:
    message = (
        ChatMessage.objects.select_related("team__run__project", "team__run__cohort", "author", "job")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        raise HttpError(404, "No such message")
    get_team(request, message.team_id)
    return message


def get_team(request, team_id: int) -> Team:
    team = Team.objects.select_related("run__project", "run__cohort").filter(pk=team_id).first()
    if team is None:
        raise HttpError(404, "No such team")
    if not services.can_view_team(request.auth, team):
        raise HttpError(403, "This is another team's workspace.")
    return team


class CodeIn(Schema):
    code: str


class NameIn(Schema):
    name: str


class TextIn(Schema):
    text: str


class DocumentIn(Schema):
    text: str
    base_version: int
    stage: str | None = None  # the stage the editor was opened for; saving to a finished stage is refused


class TaskIn(Schema):
    title: str


class TaskChangeIn(Schema):
    """Any of: move (status), rename (title), assign (assignee: a teammate's username, "" for nobody)."""

    status: str | None = None
    assign_to_me: bool = False
    title: str | None = None
    assignee: str | None = None


class FeedbackIn(Schema):
    helpful: bool


class RunIn(Schema):
    project: int
    cohort: int
    open: bool = False  # open it for students at once (else it starts as a draft)


class AnswersIn(Schema):
    answers: dict


class OverrideIn(Schema):
    verdict: str
    note: str = ""


class StatusIn(Schema):
    status: str


class TeamsIn(Schema):
    size: int = 3


def run_out(run: ProjectRun, user) -> dict:
    team = services.learner_team(user, run)
    return {
        "id": run.pk,
        "project": run.project.title,
        "driving_question": run.project.driving_question,
        "cohort": run.cohort.name,
        "status": run.status,
        "team": team.pk if team else None,
    }


# ---- students ------------------------------------------------------------------------------


@router.post("/pbl/join")
def join(request, payload: CodeIn):
    cohort = account_services.join_cohort(request.auth, payload.code)
    return {
        "cohort": cohort.name,
        "runs": [run_out(r, request.auth) for r in services.student_runs(request.auth) if r.cohort_id == cohort.pk],
    }


@router.get("/pbl/runs")
def runs(request):
    user = request.auth
    found = services.teacher_runs(user) if user.role in ("teacher", "admin") else services.student_runs(user)
    return [run_out(r, user) for r in found]


@router.get("/pbl/runs/{run_id}/teams")
def teams(request, run_id: int):
    """The run's teams with their members and free places: a learner picks one to join (or
    names a new one) with POST .../team. For the class's students and the run's teacher."""
    run = get_run(run_id)
    if not (run.cohort.students.filter(pk=request.auth.pk).exists() or services.is_run_teacher(request.auth, run)):
        raise HttpError(403, "Not your class.")
    found = run.teams.prefetch_related("members").order_by("name")
    return [
        {
            "id": t.pk,
            "name": t.name,
            "members": [m.username for m in t.members.all()],
            "places": Team.MAX_MEMBERS - len(t.members.all()),
        }
        for t in found
    ]


@router.post("/pbl/runs/{run_id}/team")
def join_team(request, run_id: int, payload: NameIn):
    team = services.join_team(request.auth, get_run(run_id), payload.name)
    return {"id": team.pk, "name": team.name, "members": [m.username for m in team.members.all()]}


@router.get("/pbl/runs/{run_id}/exams/{kind}")
def exam(request, run_id: int, kind: str):
    run = get_run(run_id)
    if not (run.cohort.students.filter(pk=request.auth.pk).exists() or services.is_run_teacher(request.auth, run)):
        raise HttpError(403, "Not your class.")
    return {"kind": kind, "questions": exams.exam_questions(run, kind)}


@router.post("/pbl/runs/{run_id}/exams/{kind}")
def answer_exam(request, run_id: int, kind: str, payload: AnswersIn):
    run = get_run(run_id)
    attempt = exams.submit_exam(request.auth, run, kind, payload.answers)
    summary = exams.exam_summary(run, request.auth)
    return {
        "score": attempt.score,
        "max_score": attempt.max_score,
        "fraction": round(attempt.fraction, 3),
        "graded": attempt.graded,
        "pre": summary["pre"],
        "post": summary["post"],
        "gain": summary["gain"],
    }


@router.get("/pbl/teams/{team_id}/workspace")
def workspace(request, team_id: int):
    team = get_team(request, team_id)
    return workspace_out(present.workspace_state(request.auth, team), teacher=is_teacher_of(request, team))


@router.post("/pbl/teams/{team_id}/messages")
def post_message(request, team_id: int, payload: TextIn):
    result = services.post_message(request.auth, get_team(request, team_id), payload.text)
    return {"message": message_out(result["message"]), "replies": [message_out(m) for m in result["replies"]]}


@router.post("/pbl/messages/{message_id}/cancel")
def cancel_reply(request, message_id: int):
    """Stop an agent's reply that is still waiting or being written."""
    return message_out(replies.cancel_reply(request.auth, get_message(request, message_id)))


@router.post("/pbl/messages/{message_id}/retry")
def retry_reply(request, message_id: int):
    """Ask again for a reply that failed or was cancelled (a new job, the same message)."""
    return message_out(replies.retry_reply(request.auth, get_message(request, message_id)))


@router.post("/pbl/messages/{message_id}/feedback")
def rate_reply(request, message_id: int, payload: FeedbackIn):
    """Mark an agent's reply helpful or not (the latest rating per learner counts)."""
    return message_out(replies.rate_reply(request.auth, get_message(request, message_id), payload.helpful))


@router.get("/pbl/teams/{team_id}/messages")
def messages(request, team_id: int, after: int = 0):
    team = get_team(request, team_id)
    found = ChatMessage.objects.filter(team=team, pk__gt=after).select_related("author", "job").order_by("pk")[:200]
    teacher = is_teacher_of(request, team)
    return [message_out(m, teacher) for m in found]


@router.put("/pbl/teams/{team_id}/document")
def save_document(request, team_id: int, payload: DocumentIn):
    team = get_team(request, team_id)
    return deliverable.save_document(request.auth, team, payload.text, payload.base_version, stage_key=payload.stage)


@router.get("/pbl/teams/{team_id}/document/versions")
def document_versions(request, team_id: int):
    team = get_team(request, team_id)
    return [
        {
            "number": v.number,
            "author": v.author.username,
            "base": v.base_number,
            "merged": v.merged,
            "conflict": v.conflict,
            "chars_added": v.chars_added,
            "created_at": v.created_at.isoformat(),
            "text": v.text,
        }
        for v in deliverable.document_versions(team)
    ]


@router.post("/pbl/teams/{team_id}/tasks")
def add_task(request, team_id: int, payload: TaskIn):
    task = board.add_task(request.auth, get_team(request, team_id), payload.title)
    return {"id": task.pk, "title": task.title, "status": task.status}


@router.patch("/pbl/teams/{team_id}/tasks/{task_id}")
def change_task(request, team_id: int, task_id: int, payload: TaskChangeIn):
    team = get_team(request, team_id)
    if payload.status is None and payload.title is None and payload.assignee is None and not payload.assign_to_me:
        raise ValidationError("Nothing to change: give a status, title or assignee.")
    if payload.title is not None or payload.assignee is not None:
        board.edit_task(request.auth, team, task_id, title=payload.title, assignee=payload.assignee)
    if payload.status is not None or payload.assign_to_me:
        current = team.tasks.filter(pk=task_id).values_list("status", flat=True).first() or ""
        board.move_task(request.auth, team, task_id, payload.status or current, payload.assign_to_me)
    task = team.tasks.select_related("assignee").get(pk=task_id)
    return {
        "id": task.pk,
        "title": task.title,
        "status": task.status,
        "assignee": task.assignee.username if task.assignee else None,
    }


@router.delete("/pbl/teams/{team_id}/tasks/{task_id}")
def delete_task(request, team_id: int, task_id: int):
    board.delete_task(request.auth, get_team(request, team_id), task_id)
    return {"deleted": task_id}


@router.post("/pbl/teams/{team_id}/milestones/{milestone_key}/submit")
def submit_milestone(request, team_id: int, milestone_key: str):
    return submission_out(milestones.submit_milestone(request.auth, get_team(request, team_id), milestone_key))


@router.get("/pbl/submissions/{submission_id}")
def submission(request, submission_id: int):
    found = (
        MilestoneSubmission.objects.select_related("team__run__cohort", "submitted_by").filter(pk=submission_id).first()
    )
    if found is None:
        raise HttpError(404, "No such submission")
    get_team(request, found.team_id)
    return submission_out(found)


# ---- teachers ------------------------------------------------------------------------------


def teacher_run(request, run_id: int) -> ProjectRun:
    run = get_run(run_id)
    services.require_run_teacher(request.auth, run)
    return run


@router.get("/pbl/runs/{run_id}/dashboard")
def run_dashboard(request, run_id: int, team: int | None = None, learner: str = "", verb: str = ""):
    return dashboard.api_payload(dashboard.dashboard_data(teacher_run(request, run_id), team, learner, verb))


@router.get("/pbl/runs/{run_id}/events")
def run_events(request, run_id: int, format: str = "xapi"):  # noqa: A002  (the query parameter's name)
    run = teacher_run(request, run_id)
    if format == "csv":
        return present.events_csv_download(run)
    if format != "xapi":
        raise HttpError(422, "format must be csv or xapi")
    return [events.xapi_statement(e) for e in present.run_events(run)]


@router.post("/pbl/runs")
def start_run(request, payload: RunIn):
    """A teacher runs one of their projects with one of their classes (open at once with open=true)."""
    project = Project.objects.filter(pk=payload.project).first()
    cohort = Cohort.objects.filter(pk=payload.cohort).first()
    if project is None or cohort is None:
        raise HttpError(404, "No such project" if project is None else "No such class")
    run = services.create_run(request.auth, project, cohort)
    if payload.open:
        run = services.set_run_status(request.auth, run, "open")
    return run_out(run, request.auth)


@router.post("/pbl/runs/{run_id}/status")
def run_status(request, run_id: int, payload: StatusIn):
    run = services.set_run_status(request.auth, teacher_run(request, run_id), payload.status)
    return {"id": run.pk, "status": run.status}


@router.post("/pbl/runs/{run_id}/teams")
def form_teams(request, run_id: int, payload: TeamsIn):
    teams = services.form_teams(request.auth, teacher_run(request, run_id), payload.size)
    return [{"id": t.pk, "name": t.name, "members": [m.username for m in t.members.all()]} for t in teams]


# One optional number per orchestrator threshold (a missing one takes its default); an unknown
# name is a 422 that names it. Ranges are checked by the service, with its own words.
class _ClosedSchema(Schema):
    model_config = ConfigDict(extra="forbid")


ThresholdsIn = create_model(
    "ThresholdsIn", __base__=_ClosedSchema, **dict.fromkeys(DEFAULT_THRESHOLDS, (float | None, None))
)


@router.put("/pbl/runs/{run_id}/thresholds")
def thresholds(request, run_id: int, payload: ThresholdsIn):
    values = payload.model_dump(exclude_none=True)
    return services.set_thresholds(request.auth, teacher_run(request, run_id), values)


@router.post("/pbl/submissions/{submission_id}/override")
def override(request, submission_id: int, payload: OverrideIn):
    found = MilestoneSubmission.objects.select_related("team__run__cohort").filter(pk=submission_id).first()
    if found is None:
        raise HttpError(404, "No such submission")
    milestones.override_submission(request.auth, found, payload.verdict, payload.note)
    found.refresh_from_db()
    return submission_out(found)


@router.post(
    "/pbl/projects",
    # The body is read and checked by schema.parse_project_json (size limit, errors that name the
    # place); the OpenAPI document shows the same JSON Schema the check uses.
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema.PROJECT_SCHEMA}}}
    },
)
def import_project(request):
    data = schema.parse_project_json(request.body)
    project = services.create_project(request.auth, data)
    return {"id": project.pk, "title": project.title}


@router.get("/pbl/projects/{project_id}/export")
def export_project(request, project_id: int):
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise HttpError(404, "No such project")
    services.require_project_owner(request.auth, project)
    return HttpResponse(
        json.dumps(schema.export_project(project), indent=2, ensure_ascii=False), content_type="application/json"
    )
