"""Collaborator agents, worker side: policy before, streamed generation gated sentence by
sentence by the policy after, guidance instead of over-reaching help, events for all of it."""

import logging

from django.conf import settings
from django.db import transaction

from apps.inference.backends import GenerationParams
from apps.inference.registry import model_for_role
from apps.jobs.events import send_to_group
from apps.jobs.models import Job
from apps.jobs.services import JobCancelled, report_progress
from apps.pbl import boundary, textutil
from apps.pbl.events import log_event, publish_team, team_group
from apps.pbl.models import ChatMessage, MessageStatus
from apps.pbl.replies import WAITING, mark_cancelled

logger = logging.getLogger(__name__)

RESOURCE_CHARS = 1200
SENTENCE_END = (".", "!", "?", "\n")


def relevant_resources(resources: list[dict], text: str, limit: int = 2) -> list[dict]:
    ranked = sorted(resources, key=lambda r: textutil.word_overlap(text, r["text"]), reverse=True)
    return ranked[:limit]


def agent_messages(agent: dict, project, stage: dict, request: str, history: list[ChatMessage]) -> list[dict]:
    """The chat prompt: role, persona and boundary, the stage, the most relevant resources,
    a few recent turns, then the learner's message."""
    resources = "\n".join(
        f"- {r['title']}: {r['text'][:RESOURCE_CHARS]}" for r in relevant_resources(project.spec["resources"], request)
    )
    system = (
        f"You are {agent['name']}, a {agent['role'].replace('_', ' ')} helping a student team. {agent['persona']}\n"
        f"Project: {project.title}. Driving question: {project.driving_question}\n"
        f"Current stage: {stage['title']}. The students must write: {stage['deliverable']['title']}.\n"
        f"You may: {'; '.join(agent['may'])}.\nYou must not: {'; '.join(agent['must_not'])}.\n"
        "Answer briefly (at most 4 sentences). Prefer questions and hints. Never write the students' text for them.\n"
        f"Resources:\n{resources}"
    )
    messages = [{"role": "system", "content": system}]
    for turn in history[-4:]:
        if turn.text:
            role = "user" if turn.kind == "learner" else "assistant"
            messages.append(
                {"role": role, "content": f"{turn.speaker}: {turn.text[:400]}" if role == "user" else turn.text[:400]}
            )
    messages.append({"role": "user", "content": request})
    return messages


def _publish_delta(team_id: int, message_id: int, start: int, text: str) -> None:
    send_to_group(
        team_group(team_id), {"type": "pbl.delta", "message_id": message_id, "start": start, "text": text}, wait=False
    )


def _check_cancelled(job: Job) -> None:
    """Read the job's cancel flag fresh: a cancelled reply is never generated nor kept."""
    if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
        raise JobCancelled


def answer(job: Job) -> dict:
    """Celery body of a pbl_agent_reply job. A cancel (the flag on the job) is honoured
    before the model is asked, at every released sentence, and before the reply is kept."""
    message = ChatMessage.objects.select_related("team__run__project", "reply_to__author").filter(job=job).first()
    if message is None or message.status not in WAITING:
        # Retried with a new job, or cancelled before this worker got to it: nothing to say.
        return {"status": "skipped", "message": message.status if message else "gone"}
    try:
        _check_cancelled(job)
        return _answer(job, message)
    except JobCancelled:
        mark_cancelled(message)
        raise


def _answer(job: Job, message: ChatMessage) -> dict:
    from apps.inference.services import load_backend

    team, request = message.team, message.reply_to
    project = team.run.project
    agent = project.agent(message.agent_name)
    stage = team.stage or project.stages[-1]
    strictness = agent.get("strictness", "medium")
    backend = load_backend(model_for_role("assistant"))
    learner = request.author
    context = {"stage": stage["key"], "agent": agent["name"], "strictness": strictness, "request": request.pk}
    report_progress(job, 0.05, f"{agent['name']} is reading your message")

    # 1. Policy before generation: rules + constrained classification.
    model_label = None
    try:
        model_label = backend.generate_json(boundary.classifier_messages(request.text, stage), choices=boundary.CHOICES)
    except Exception:  # noqa: BLE001  (the rules still apply when the classifier fails)
        logger.exception("boundary classifier failed")
    nearest = None
    try:
        nearest = boundary.nearest_scores(request.text)
    except Exception:  # noqa: BLE001  (the rules still apply when the encoder fails)
        logger.exception("boundary nearest-example check failed")
    decision = boundary.decide_before(request.text, stage, strictness, model_label, nearest)
    message.meta = {
        **message.meta,
        "before": {
            "label": decision.label,
            "reason": decision.reason,
            "rule": decision.rule,
            "model_label": decision.model_label,
        },
    }
    if not decision.allowed:
        text = boundary.guidance(agent, stage, project.spec["resources"], request.text, decision.label)
        return _finish_guided(
            message,
            text,
            "refused",
            learner,
            context,
            {
                "reason": decision.label,
                "by": decision.reason,
                "rule": decision.rule,
                "model_label": decision.model_label,
            },
        )

    # 2. Generate, releasing text to the chat a sentence at a time while the policy after allows it.
    report_progress(job, 0.15, f"{agent['name']} is writing")
    if not ChatMessage.objects.filter(pk=message.pk, status=MessageStatus.PENDING).update(
        status=MessageStatus.STREAMING, text=""
    ):
        raise JobCancelled  # the learner cancelled it while the policy ran
    publish_team(team.pk, {"type": "pbl.message", "message_id": message.pk})
    history = list(team.messages.filter(created_at__lt=request.created_at).order_by("-created_at")[:4])[::-1]
    params = GenerationParams(
        temperature=0.3, max_tokens=settings.PBL_AGENT_MAX_TOKENS, repetition_penalty=1.2, seed=request.pk
    )
    drafted, released = "", ""
    stopped = None
    for piece in backend.chat(agent_messages(agent, project, stage, request.text, history), params):
        drafted += piece
        if not drafted.rstrip().endswith(SENTENCE_END) and len(drafted) - len(released) < 160:
            continue
        check = boundary.check_after(drafted, stage, strictness)
        if check.ready:
            stopped = check
            break
        report_progress(job, min(0.9, 0.2 + len(drafted) / 1000), f"{agent['name']} is writing")
        _release(message, team.pk, released, drafted)
        released = drafted
    _check_cancelled(job)
    final = stopped or boundary.check_after(drafted, stage, strictness)
    if final.ready:
        text = boundary.guidance(agent, stage, project.spec["resources"], request.text, "draft")
        return _finish_guided(
            message,
            text,
            "downgraded",
            learner,
            context,
            {"reason": "deliverable_ready", **final.as_dict(), "draft_words": final.words},
        )
    text = drafted.strip()
    if not text:
        # Never an empty bubble: the reply failed, says so, and can be asked again.
        fail_reply(job, "The model returned an empty answer.")
        return {"status": "failed", "reason": "empty"}
    _release(message, team.pk, released, drafted)
    telling = final.score >= boundary.TELLING_SCORE
    with transaction.atomic():
        kept = ChatMessage.objects.filter(pk=message.pk, status__in=WAITING).update(
            text=text,
            status=MessageStatus.DONE,
            meta={**message.meta, "after": final.as_dict(), "telling": telling},
        )
        if not kept:
            raise JobCancelled  # cancelled between the last check and now: the reply is not kept
        _log_replied(message, learner, context, words=final.words, telling=telling, score=round(final.score, 3))
    publish_team(team.pk, {"type": "pbl.message", "message_id": message.pk})
    return {"status": "done", "words": final.words}


def _release(message: ChatMessage, team_id: int, released: str, drafted: str) -> None:
    if len(drafted) <= len(released):
        return
    if not ChatMessage.objects.filter(pk=message.pk, status=MessageStatus.STREAMING).update(text=drafted):
        raise JobCancelled
    _publish_delta(team_id, message.pk, len(released), drafted[len(released) :])


def _log_replied(message: ChatMessage, learner, context: dict, guided: bool = False, **result) -> None:
    """The agent turn the dashboard's telling rate counts: one per reply, guided or not."""
    log_event(
        message.team.run,
        "replied",
        "message",
        message.pk,
        team=message.team,
        actor_name=f"agent:{message.agent_name}",
        result={"to": learner.username if learner else "", **result, "guided": guided},
        context=context,
    )


def _finish_guided(message: ChatMessage, text: str, verb: str, learner, context: dict, result: dict) -> dict:
    team = message.team
    with transaction.atomic():
        if not ChatMessage.objects.filter(pk=message.pk, status__in=WAITING).update(
            text=text, status=MessageStatus.GUIDED, meta={**message.meta, verb: result, "telling": False}
        ):
            raise JobCancelled
        log_event(
            team.run,
            verb,
            "message",
            message.pk,
            team=team,
            actor_name=f"agent:{message.agent_name}",
            result={**result, "to": learner.username if learner else ""},
            context=context,
        )
        _log_replied(
            message,
            learner,
            context,
            words=len(textutil.words(text)),
            telling=False,
            guided=True,
            draft_telling=verb == "downgraded",
        )
    # Replaces whatever was streamed with the guidance.
    publish_team(team.pk, {"type": "pbl.message", "message_id": message.pk})
    return {"status": "guided", "reason": result.get("reason")}


def fail_reply(job: Job, error: str) -> None:
    """A reply that failed for good says so in the chat (and can be asked again), never a
    spinner or an empty bubble. A cancelled job's reply reads as cancelled, not failed. The
    error itself is for the teacher's log, not the learner's chat."""
    message = ChatMessage.objects.select_related("team__run").filter(job=job).first()
    if message is None:
        return
    if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
        mark_cancelled(message)
        return
    with transaction.atomic():
        failed = ChatMessage.objects.filter(pk=message.pk, status__in=WAITING).update(
            status=MessageStatus.FAILED,
            text=f"{message.agent_name} could not answer this time.",
            meta={**message.meta, "error": error[:500]},
        )
        if failed:
            log_event(
                message.team.run,
                "failed",
                "message",
                message.pk,
                team=message.team,
                actor_name=f"agent:{message.agent_name}",
                result={"error": error[:200], "job": job.pk},
            )
    publish_team(message.team_id, {"type": "pbl.message", "message_id": message.pk})
