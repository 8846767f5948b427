"""How chat messages and workspaces look to the outside (API JSON, page context)."""

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from apps.jobs.models import JobStatus
from apps.pbl import events
from apps.pbl.models import ChatMessage, Event, MessageStatus, ProjectRun


def message_state(message: ChatMessage) -> tuple[str, str]:
    """(state, note) for a message: the note says in words what a waiting reply is doing."""
    if message.status != MessageStatus.PENDING or message.job is None:
        return message.status, ""
    job = message.job
    if job.status == JobStatus.QUEUED:
        age = (timezone.now() - job.created_at).total_seconds()
        if age >= settings.PBL_AGENT_UNAVAILABLE_AFTER_SECONDS:
            return "unavailable", (
                f"{message.agent_name} is unavailable right now (the model worker is busy or offline). "
                "Your message is kept and will be answered when it is back."
            )
        return "queued", f"{message.agent_name} will answer shortly…"
    if job.status == JobStatus.RUNNING:
        return "thinking", f"{message.agent_name} is thinking…"
    if job.status == JobStatus.FAILED:
        return "failed", f"{message.agent_name} could not answer: {job.error[:200]}"
    return message.status, ""


def message_out(message: ChatMessage) -> dict:
    state, note = message_state(message)
    meta = message.meta or {}
    return {
        "id": message.pk,
        "kind": message.kind,
        "speaker": message.speaker,
        "agent": message.agent_name or None,
        "text": message.text,
        "status": state,
        "note": note,
        "reply_to": message.reply_to_id,
        "scaffold": meta.get("type") if message.kind == "orchestrator" else None,
        "for": meta.get("for"),
        "policy": {key: meta[key] for key in ("before", "after", "refused", "downgraded", "telling") if key in meta},
        "created_at": message.created_at.isoformat(),
    }


def workspace_out(state: dict) -> dict:
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
        "messages": [message_out(m) for m in state["messages"]],
        "agents": [{"name": a["name"], "role": a["role"]} for a in state["project"].agents],
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
