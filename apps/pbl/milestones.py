"""PBL studio actions on milestones: submitting the deliverable for one (a judge job
evaluates it), a teacher's override, and advancing the stage once every milestone is complete."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.jobs.services import create_job
from apps.pbl import textutil
from apps.pbl.deliverable import get_document
from apps.pbl.events import log_event, publish_team
from apps.pbl.models import ChatMessage, MessageKind, MilestoneSubmission, Team, Verdict
from apps.pbl.services import require_member, require_open, require_run_teacher, seed_tasks


def milestone_states(team: Team, stage: dict) -> list[dict]:
    submissions = list(team.submissions.filter(stage_key=stage["key"]).order_by("-created_at"))
    states = []
    for milestone in stage["milestones"]:
        mine = [s for s in submissions if s.milestone_key == milestone["key"]]
        latest = mine[0] if mine else None
        complete = any(s.effective_verdict == Verdict.COMPLETE for s in mine)
        states.append({"milestone": milestone, "latest": latest, "complete": complete, "attempts": len(mine)})
    return states


def submit_milestone(user: User, team: Team, milestone_key: str) -> MilestoneSubmission:
    """Submit the current deliverable for one milestone of the current stage; a judge job evaluates it."""
    require_member(user, team)
    require_open(team.run)
    stage = team.stage
    if stage is None:
        raise ValidationError("Your team has finished every stage.")
    milestone = next((m for m in stage["milestones"] if m["key"] == milestone_key), None)
    if milestone is None:
        raise ValidationError(f"The current stage has no milestone {milestone_key!r}.")
    state = next(s for s in milestone_states(team, stage) if s["milestone"]["key"] == milestone_key)
    if state["complete"]:
        raise ValidationError("This milestone is already complete.")
    if state["latest"] is not None and not state["latest"].evaluated:
        raise ValidationError("This milestone is being evaluated; wait for the feedback.")
    document = get_document(team)
    if len(textutil.words(document.text)) < 5:
        raise ValidationError("Write your deliverable first: the document is (nearly) empty.")
    with transaction.atomic():
        job = create_job(user, "pbl.judge", {"team": team.pk})
        submission = MilestoneSubmission.objects.create(
            team=team,
            stage_key=stage["key"],
            milestone_key=milestone_key,
            submitted_by=user,
            text=document.text,
            job=job,
        )
        log_event(
            team.run,
            "submitted",
            "milestone",
            f"{stage['key']}/{milestone_key}",
            team=team,
            actor=user,
            result={"submission": submission.pk, "document_version": document.version},
            context={"stage": stage["key"]},
        )
    publish_team(team.pk, {"type": "pbl.refresh", "what": "stage"})
    return submission


def override_submission(teacher: User, submission: MilestoneSubmission, verdict: str, note: str = "") -> None:
    require_run_teacher(teacher, submission.team.run)
    if verdict not in Verdict.values:
        raise ValidationError("The verdict must be complete or needs_revision.")
    with transaction.atomic():
        submission.override_verdict = verdict
        submission.override_by = teacher
        submission.override_note = note[:2000]
        submission.save(update_fields=["override_verdict", "override_by", "override_note"])
        team = submission.team
        log_event(
            team.run,
            "overrode",
            "milestone",
            f"{submission.stage_key}/{submission.milestone_key}",
            team=team,
            actor=teacher,
            result={"submission": submission.pk, "verdict": verdict, "judge": submission.verdict, "note": note[:500]},
            context={"stage": submission.stage_key},
        )
        maybe_advance(team)
    publish_team(submission.team_id, {"type": "pbl.refresh", "what": "stage"})


def maybe_advance(team: Team) -> bool:
    """Advance the team's stage when every milestone of it has a complete evaluated (or
    teacher-overridden) submission. Nothing else moves a stage: not a chat, not an agent."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    stage = team.stage
    if stage is None or not all(s["complete"] for s in milestone_states(team, stage)):
        return False
    now = timezone.now()
    minutes = (now - team.stage_started_at).total_seconds() / 60
    log_event(
        team.run,
        "completed",
        "stage",
        stage["key"],
        team=team,
        actor_name="judge",
        result={"minutes": round(minutes, 1), "stage_index": team.current_stage},
        context={"stage": stage["key"]},
    )
    team.current_stage += 1
    team.stage_started_at = now
    nxt = team.stage
    if nxt is None:
        team.finished_at = now
        text = (
            f"Stage “{stage['title']}” is complete, and with it the whole project. Well done! Take the post-exam next."
        )
    else:
        text = f"Stage “{stage['title']}” is complete. Next: “{nxt['title']}”. {nxt.get('goal', '')}"
    team.save(update_fields=["current_stage", "stage_started_at", "finished_at"])
    if nxt is not None:
        log_event(
            team.run,
            "advanced",
            "stage",
            nxt["key"],
            team=team,
            actor_name="judge",
            result={"stage_index": team.current_stage},
            context={"stage": nxt["key"]},
        )
        first = team.members.first()
        if first is not None:
            seed_tasks(team, first)
    message = ChatMessage.objects.create(team=team, kind=MessageKind.SYSTEM, text=text)
    publish_team(team.pk, {"type": "pbl.message", "message_id": message.pk})
    publish_team(team.pk, {"type": "pbl.refresh", "what": "stage"})
    return True
