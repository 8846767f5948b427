"""What a learner can do with an agent's reply: cancel it while it waits, ask again when it
failed or was cancelled, and mark it helpful or not. Same shape as services: check who may,
change, log an Event, publish after commit.

A reply's status is changed with compare-and-set updates (only from a waiting status), here
and in the worker (apps.pbl.agents), so a cancel and a finishing worker can race without a
cancelled reply being answered or an answered one being marked cancelled."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts.models import User
from apps.jobs.services import cancel_job, create_job
from apps.pbl.events import log_event, publish_team
from apps.pbl.models import ChatMessage, MessageKind, MessageStatus
from apps.pbl.present import RETRYABLE_STATES, WAITING_STATES, message_state
from apps.pbl.services import require_member, require_open

WAITING = (MessageStatus.PENDING, MessageStatus.STREAMING)


def cancelled_text(agent_name: str) -> str:
    return f"Cancelled: {agent_name} will not answer this."


def _agent_reply(message: ChatMessage) -> None:
    if message.kind != MessageKind.AGENT or message.reply_to_id is None:
        raise ValidationError("Only an agent's reply to a learner can be cancelled, retried or rated.")


def mark_cancelled(message: ChatMessage) -> bool:
    """The reply will not come: say so in the bubble. False when it had already finished."""
    changed = ChatMessage.objects.filter(pk=message.pk, status__in=WAITING).update(
        status=MessageStatus.CANCELLED, text=cancelled_text(message.agent_name)
    )
    if changed:
        publish_team(message.team_id, {"type": "pbl.message", "message_id": message.pk})
    return bool(changed)


def cancel_reply(user: User, message: ChatMessage) -> ChatMessage:
    """Stop a reply that is still waiting or being written. Its job is cancelled (a queued job
    at once; a running one at the worker's next check, before any more text is kept)."""
    team = message.team
    require_member(user, team)
    _agent_reply(message)
    state, _note = message_state(message)
    if state not in WAITING_STATES:
        raise ValidationError("This reply is no longer waiting; there is nothing to cancel.")
    with transaction.atomic():
        if message.job is not None:
            cancel_job(message.job)
        if mark_cancelled(message):
            log_event(
                team.run,
                "cancelled",
                "message",
                message.pk,
                team=team,
                actor=user,
                result={"agent": message.agent_name, "job": message.job_id},
            )
    message.refresh_from_db()
    return message


def retry_reply(user: User, message: ChatMessage) -> ChatMessage:
    """Ask the agent again for a reply that failed or was cancelled: a new job, the same bubble."""
    team = message.team
    require_member(user, team)
    require_open(team.run)
    _agent_reply(message)
    state, _note = message_state(message)
    if state not in RETRYABLE_STATES:
        raise ValidationError("Only a failed or cancelled reply can be asked again.")
    with transaction.atomic():
        locked = ChatMessage.objects.select_for_update().get(pk=message.pk)
        job = create_job(user, "pbl.agent_reply", {"team": team.pk})
        keep = {key: value for key, value in (locked.meta or {}).items() if key in ("strictness", "feedback")}
        locked.job, locked.status, locked.text = job, MessageStatus.PENDING, ""
        locked.meta = {**keep, "retries": int((locked.meta or {}).get("retries", 0)) + 1}
        locked.save(update_fields=["job", "status", "text", "meta"])
        log_event(
            team.run,
            "retried",
            "message",
            message.pk,
            team=team,
            actor=user,
            result={"agent": message.agent_name, "job": job.pk, "was": state},
        )
    publish_team(team.pk, {"type": "pbl.message", "message_id": message.pk})
    message.refresh_from_db()
    return message


def rate_reply(user: User, message: ChatMessage, helpful: bool) -> ChatMessage:
    """A learner's verdict on an agent's reply (the WildReward idea: learners' own signal of
    what helped). Every rating is an event; the latest one per learner and reply counts."""
    team = message.team
    require_member(user, team)
    _agent_reply(message)
    if message.status not in (MessageStatus.DONE, MessageStatus.GUIDED):
        raise ValidationError("Rate a reply once the agent has answered.")
    with transaction.atomic():
        locked = ChatMessage.objects.select_for_update().get(pk=message.pk)
        feedback = {**(locked.meta or {}).get("feedback", {}), user.username: bool(helpful)}
        locked.meta = {**(locked.meta or {}), "feedback": feedback}
        locked.save(update_fields=["meta"])
        log_event(
            team.run,
            "rated",
            "message",
            message.pk,
            team=team,
            actor=user,
            result={
                "agent": message.agent_name,
                "helpful": bool(helpful),
                "guided": message.status == MessageStatus.GUIDED,
                "telling": bool((locked.meta or {}).get("telling")),
            },
        )
    publish_team(team.pk, {"type": "pbl.message", "message_id": message.pk})
    message.refresh_from_db()
    return message
