"""How chat messages and workspaces look to the outside (API JSON, page context)."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.jobs.models import JobStatus
from apps.jobs.services import queue_wait
from apps.pbl import events
from apps.pbl.deliverable import get_document
from apps.pbl.exams import exam_summary
from apps.pbl.milestones import milestone_states
from apps.pbl.models import ChatMessage, Event, MessageStatus, ProjectRun, Team
from apps.pbl.services import can_view_team, visible_messages

WAITING_STATES = frozenset({"queued", "unavailable", "thinking", "streaming"})
RETRYABLE_STATES = frozenset({"failed", "cancelled"})


def message_state(message: ChatMessage) -> tuple[str, str]:
    """(state, note) for a message: the note says in words what a waiting reply is doing, or
    why a reply is missing. Derived from the reply's job too, so a job cancelled or failed
    elsewhere (the jobs page, a stopped worker) never leaves a bubble waiting forever."""
    name = message.agent_name
    if message.status == MessageStatus.CANCELLED:
        return "cancelled", f"Cancelled: {name} will not answer this. Try again if you still need it."
    if message.status == MessageStatus.FAILED:
        return "failed", f"{name} could not answer this time. Your message is kept: try again."
    if message.status not in (MessageStatus.PENDING, MessageStatus.STREAMING) or message.job is None:
        return message.status, ""
    job = message.job
    if job.status == JobStatus.CANCELLED or (job.cancel_requested and not job.is_finished):
        return "cancelled", f"Cancelled: {name} will not answer this. Try again if you still need it."
    if job.is_finished:  # failed, or ended without the worker recording a reply (it was stopped)
        return "failed", f"{name} could not answer this time. Your message is kept: try again."
    if message.status == MessageStatus.STREAMING:
        return "streaming", ""
    if job.status == JobStatus.QUEUED:
        age = (timezone.now() - job.created_at).total_seconds()
        wait = queue_wait(job)
        where = f" {wait}." if wait else ""
        if age >= settings.PBL_AGENT_UNAVAILABLE_AFTER_SECONDS:
            return "unavailable", (
                f"{name} is unavailable right now (the model worker is busy or offline). Your message is kept "
                f"in the queue: the answer appears here when it arrives, or cancel it.{where}"
            )
        return "queued", f"{name} will answer shortly…{where}"
    return "thinking", f"{name} is thinking…"


def message_out(message: ChatMessage, teacher: bool = False) -> dict:
    """A chat message as JSON. The boundary policy's internals (rules, scores, the model's
    label) are for the run's teacher only: learners see the reply and its state."""
    state, note = message_state(message)
    meta = message.meta or {}
    out = {
        "id": message.pk,
        "kind": message.kind,
        "speaker": message.speaker,
        "agent": message.agent_name or None,
        "text": message.text,
        "status": state,
        "note": note,
        "reply_to": message.reply_to_id,
        # The reply's job: GET /api/jobs/{id} for progress, POST .../cancel to stop it.
        "job": message.job_id,
        "scaffold": meta.get("type") if message.kind == "orchestrator" else None,
        "for": meta.get("for"),
        "guided": message.status == MessageStatus.GUIDED,
        "feedback": meta.get("feedback", {}),
        "created_at": message.created_at.isoformat(),
    }
    if teacher:
        out["policy"] = {
            key: meta[key] for key in ("before", "after", "refused", "downgraded", "telling", "error") if key in meta
        }
        if message.kind == "orchestrator" and meta.get("rule"):
            out["policy"]["rule"] = meta["rule"]
    return out


def workspace_out(state: dict, teacher: bool = False) -> dict:
    team, document = state["team"], state["document"]
    return {
        "run": {"id": state["run"].pk, "status": state["run"].status},
        "project": {
            "id": state["project"].pk,
            "title": state["project"].title,
            "driving_question": state["project"].driving_question,
        },
        "team": {
            "id": team.pk,
            "name": team.name,
            "members": [m.username for m in state["members"]],
            "current_stage": team.current_stage,
            "finished": team.finished_at is not None,
        },
        "stages": [
            {
                "key": s["stage"]["key"],
                "title": s["stage"]["title"],
                "status": s["status"],
                "deliverable": s["stage"]["deliverable"],
                "milestones": [
                    {
                        "key": m["milestone"]["key"],
                        "title": m["milestone"]["title"],
                        "complete": m["complete"],
                        "attempts": m["attempts"],
                        "latest": submission_out(m["latest"]) if m["latest"] else None,
                    }
                    for m in s["milestones"]
                ],
            }
            for s in state["stages"]
        ],
        "document": {"stage": document.stage_key, "version": document.version, "text": document.text},
        "tasks": [
            {"id": t.pk, "title": t.title, "status": t.status, "assignee": t.assignee.username if t.assignee else None}
            for t in state["tasks"]
        ],
        "messages": [message_out(m, teacher) for m in state["chat_messages"]],
        "agents": [agent_out(a) for a in state["project"].agents],
    }


def agent_out(agent: dict) -> dict:
    """What an agent is for, as the workspace shows it to learners."""
    return {
        "name": agent["name"],
        "role": agent["role"],
        "persona": agent.get("persona", ""),
        "may": list(agent.get("may", [])),
        "must_not": list(agent.get("must_not", [])),
    }


def submission_out(submission) -> dict:
    return {
        "id": submission.pk,
        "stage": submission.stage_key,
        "milestone": submission.milestone_key,
        "evaluated": submission.evaluated,
        "verdict": submission.verdict,
        "override_verdict": submission.override_verdict,
        "effective_verdict": submission.effective_verdict,
        "criteria": submission.criteria,
        "submitted_by": submission.submitted_by.username,
        "job": submission.job_id,
        "created_at": submission.created_at.isoformat(),
    }


def run_events(run: ProjectRun):
    """A run's whole event log, oldest first (what both exports hold)."""
    return Event.objects.filter(run=run).order_by("timestamp", "pk")


def events_csv_download(run: ProjectRun) -> HttpResponse:
    response = HttpResponse(events.events_csv(run_events(run)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pbl-run-{run.pk}-events.csv"'
    return response


def workspace_state(user: User, team: Team) -> dict:
    """Everything a workspace shows, as plain data (the API returns it; the page renders it)."""
    if not can_view_team(user, team):
        raise PermissionDenied("This is another team's workspace.")
    run, project = team.run, team.run.project
    stages = []
    for index, stage in enumerate(project.stages):
        status = "done" if index < team.current_stage else "current" if index == team.current_stage else "upcoming"
        stages.append(
            {
                "stage": stage,
                "index": index,
                "status": status,
                "milestones": milestone_states(team, stage) if index <= team.current_stage else [],
            }
        )
    document = get_document(team)
    return {
        "run": run,
        "project": project,
        "team": team,
        "members": list(team.members.order_by("username")),
        "stages": stages,
        "stage": team.stage,
        "document": document,
        "tasks": list(team.tasks.select_related("assignee").filter(Q(stage_key=document.stage_key) | Q(stage_key=""))),
        # Not "messages": that name is Django's flash messages in every template.
        "chat_messages": visible_messages(team),
        "exams": exam_summary(run, user) if user.role == Role.STUDENT else None,
    }
