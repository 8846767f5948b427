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


# SeaKR-style retrieval: a short draft is generated first with each token's top alternatives;
# when its mean next-token entropy reaches RETRIEVE_ENTROPY (nats, over the top 5) the model is
# unsure, and the project's most relevant resources go into the prompt with an instruction to
# cite them. A sure model answers from the stage alone. The threshold is measured, not guessed:
# `BENCH_PARTS=entropy bench/pbl.py` prints the draft entropies of questions that need the
# project's resources and of general ones (bench/data/pbl_retrieval.json) and the threshold that
# separates its calibration half best. With the assistant model (Qwen2.5-Coder-1.5B) that was
# 0.597: medians 0.685 (needs resources) vs 0.538 (general). The earlier guess, 0.9, fired on
# 1 of 8 questions that needed the resources. The signal is weak (on the check half the general
# questions ran higher, median 0.730), so the threshold errs on the side of retrieving.
DRAFT_TOKENS = 12
TOP_LOGPROBS = 5
RETRIEVE_ENTROPY = 0.6
CITED_OVERLAP = 0.12  # a resource counts as used when this share of its content words is in the reply


def relevant_resources(resources: list[dict], text: str, limit: int = 2, context: str = "") -> list[dict]:
    """The resources closest to the learner's words (title and text); `context` (the stage's
    task) only breaks ties."""

    def closeness(resource: dict) -> tuple[float, float]:
        body = f"{resource['title']} {resource['text']}"
        return textutil.word_overlap(text, body), textutil.word_overlap(context, body) if context else 0.0

    return sorted(resources, key=closeness, reverse=True)[:limit]


def agent_messages(
    agent: dict, project, stage: dict, request: str, history: list[ChatMessage], resources: list[dict] | None = None
) -> list[dict]:
    """The chat prompt: role, persona and boundary, the stage (its deliverable and milestones),
    the retrieved resources with an instruction to cite them (None: the most relevant two, as
    before retrieval was conditional; []: none), a few recent turns, then the learner's message."""
    if resources is None:
        resources = relevant_resources(project.spec["resources"], request)
    milestones = "; ".join(m["title"] for m in stage.get("milestones", []))
    system = (
        f"You are {agent['name']}, a {agent['role'].replace('_', ' ')} helping a student team. {agent['persona']}\n"
        f"Project: {project.title}. Driving question: {project.driving_question}\n"
        f"Current stage: {stage['title']}. The students must write: {stage['deliverable']['title']}"
        f" (milestones: {milestones}).\n"
        f"You may: {'; '.join(agent['may'])}.\nYou must not: {'; '.join(agent['must_not'])}.\n"
        # Short on purpose: with "at most 4 sentences" the assistant model ran to the token cap
        # (bench/pbl.py: ~110 of 120 tokens), cut mid-sentence, and every token costs time on a CPU.
        "Answer in at most 3 short sentences (under 60 words). Prefer questions and hints. "
        "Never write the students' text for them."
    )
    if resources:
        listed = "\n".join(f"[{r['title']}] {r['text'][:RESOURCE_CHARS]}" for r in resources)
        system += (
            "\nUse these project resources and name the one you use in square brackets, e.g. "
            f"[{resources[0]['title']}].\nResources:\n{listed}"
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


def uncertainty(backend, messages: list[dict], seed: int) -> float | None:
    """Mean next-token entropy of a short draft, or None when the backend gives no
    log-probabilities (then the caller retrieves: no signal means no confidence)."""
    chat_result = getattr(backend, "chat_result", None)
    if chat_result is None:
        return None
    params = GenerationParams(temperature=0, max_tokens=DRAFT_TOKENS, seed=seed)
    return chat_result(messages, params, top_logprobs=TOP_LOGPROBS).mean_entropy()


def grounding(backend, agent: dict, project, stage: dict, request: str, history: list[ChatMessage], seed: int):
    """(messages, retrieval record): retrieve the project's resources only when a short draft
    without them is unsure. The record goes into the reply's event and meta."""
    resources = project.spec.get("resources", [])
    bare = agent_messages(agent, project, stage, request, history, resources=[])
    entropy = None
    try:
        entropy = uncertainty(backend, bare, seed)
    except Exception:  # noqa: BLE001  (no draft, no signal: retrieve, the safe side)
        logger.exception("uncertainty draft failed")
    fired = bool(resources) and (entropy is None or entropy >= RETRIEVE_ENTROPY)
    chosen = relevant_resources(resources, request, context=stage["deliverable"]["prompt"]) if fired else []
    record = {
        "fired": fired,
        "entropy": None if entropy is None else round(entropy, 3),
        "threshold": RETRIEVE_ENTROPY,
        "retrieved": [r["title"] for r in chosen],
    }
    logger.info(
        "retrieval %s: draft entropy %s (threshold %s), resources %s",
        "fired" if fired else "skipped",
        record["entropy"],
        RETRIEVE_ENTROPY,
        record["retrieved"],
    )
    return agent_messages(agent, project, stage, request, history, resources=chosen), record


def policy_before(backend, text: str, stage: dict, strictness: str) -> boundary.BeforeDecision:
    """The boundary policy before generation. The model's constrained label is asked for only
    where it could change the decision (boundary.model_label_matters): for most fair questions
    it cannot, and the call cost seconds before the reply could start on a busy CPU."""
    nearest = None
    try:
        nearest = boundary.nearest_scores(text)
    except Exception:  # noqa: BLE001  (the rules still apply when the encoder fails)
        logger.exception("boundary nearest-example check failed")
    model_label = None
    if boundary.model_label_matters(text, stage, strictness, nearest):
        try:
            model_label = backend.generate_json(boundary.classifier_messages(text, stage), choices=boundary.CHOICES)
        except Exception:  # noqa: BLE001  (the rules still apply when the classifier fails)
            logger.exception("boundary classifier failed")
    return boundary.decide_before(text, stage, strictness, model_label, nearest)


def cited_resources(reply: str, retrieved: list[dict]) -> list[str]:
    """Titles of the retrieved resources the reply names or visibly draws on."""
    lowered = reply.lower()
    return [
        r["title"]
        for r in retrieved
        if r["title"].lower() in lowered or textutil.word_overlap(r["text"], reply) >= CITED_OVERLAP
    ]


def with_citation(reply: str, titles: list[str]) -> str:
    """The reply with the resources it used named at the end, unless it already names them."""
    missing = [title for title in titles if title.lower() not in reply.lower()]
    if not missing:
        return reply
    return reply.rstrip() + "\n\nSource: " + "; ".join(f"“{title}”" for title in missing)


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

    # 1. Policy before generation: rules, nearest examples, the constrained label where it counts.
    decision = policy_before(backend, request.text, stage, strictness)
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
    messages, retrieval = grounding(backend, agent, project, stage, request.text, history, seed=request.pk)
    context["retrieval"] = retrieval["fired"]
    _check_cancelled(job)
    drafted, released = "", ""
    stopped = None
    for piece in backend.chat(messages, params):
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
    retrieved = [r for r in project.spec.get("resources", []) if r["title"] in retrieval["retrieved"]]
    retrieval["cited"] = cited_resources(text, retrieved)
    text = with_citation(text, retrieval["cited"])
    _release(message, team.pk, released, text)
    telling = final.score >= boundary.TELLING_SCORE
    with transaction.atomic():
        kept = ChatMessage.objects.filter(pk=message.pk, status__in=WAITING).update(
            text=text,
            status=MessageStatus.DONE,
            meta={**message.meta, "after": final.as_dict(), "telling": telling, "retrieval": retrieval},
        )
        if not kept:
            raise JobCancelled  # cancelled between the last check and now: the reply is not kept
        _log_replied(
            message,
            learner,
            context,
            words=final.words,
            telling=telling,
            score=round(final.score, 3),
            retrieval=retrieval,
        )
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
