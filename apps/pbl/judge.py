"""The milestone judge: each rubric criterion gets a verdict (complete / needs revision) and
feedback. Evidence from the text (rubric keywords, length) decides clear cases; the model's
constrained JSON answer decides the borderline ones and writes the feedback."""

import logging

from django.conf import settings
from django.db import transaction

from apps.inference.backends import GenerationParams
from apps.inference.registry import model_for_role
from apps.jobs.models import Job
from apps.jobs.services import report_progress
from apps.pbl import textutil
from apps.pbl.events import log_event, publish_team
from apps.pbl.models import ChatMessage, MessageKind, MilestoneSubmission, Verdict

logger = logging.getLogger(__name__)

CLEARLY_MET = 0.75
CLEARLY_MISSING = 0.3
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["complete", "needs_revision"]},
        "feedback": {"type": "string", "maxLength": 160},
    },
    "required": ["verdict", "feedback"],
    "additionalProperties": False,
}


def evidence(text: str, criterion: dict) -> dict:
    """How much of the criterion the text visibly covers (0..1), from keywords and length."""
    hits = textutil.keyword_hits(text, criterion.get("keywords", []))
    score = min(1.0, len(hits) / 2) if criterion.get("keywords") else 0.5
    count = len(textutil.words(text))
    need = criterion.get("min_words", 0)
    if need and count < need:
        score *= count / need
    return {"score": round(score, 3), "hits": hits, "words": count, "min_words": need}


def judge_messages(criterion: dict, milestone: dict, text: str) -> list[dict]:
    return [
        {"role": "system", "content": "You are a fair teacher checking one rubric criterion. Answer in JSON."},
        {
            "role": "user",
            "content": f"Milestone: {milestone['title']}\nCriterion: {criterion['text']}\n"
            f"Student text:\n{text[:3000]}\n\nIs the criterion met? Give verdict and one short feedback sentence.",
        },
    ]


def evaluate(job: Job) -> dict:
    """Celery body of a pbl_judge job."""
    from apps.inference.services import load_backend

    submission = MilestoneSubmission.objects.select_related("team__run__project", "submitted_by").get(job=job)
    team = submission.team
    stage = team.run.project.stage_by_key(submission.stage_key)
    milestone = next(m for m in stage["milestones"] if m["key"] == submission.milestone_key)
    backend = load_backend(model_for_role("assistant"))
    results = []
    for index, criterion in enumerate(milestone["criteria"]):
        report_progress(job, index / len(milestone["criteria"]), f"Checking: {criterion['text'][:60]}")
        found = evidence(submission.text, criterion)
        model = {}
        try:
            model = backend.generate_json(
                judge_messages(criterion, milestone, submission.text),
                schema=VERDICT_SCHEMA,
                params=GenerationParams(temperature=0, max_tokens=settings.PBL_JUDGE_MAX_TOKENS),
            )
        except Exception as exc:  # noqa: BLE001  (the evidence still decides; the feedback says the model failed)
            logger.warning("judge model call failed: %s", exc)
        if found["score"] >= CLEARLY_MET:
            verdict, decided_by = Verdict.COMPLETE, "evidence"
        elif found["score"] <= CLEARLY_MISSING or not model:
            verdict, decided_by = Verdict.NEEDS_REVISION, "evidence"
        else:
            verdict, decided_by = model["verdict"], "model"
        if verdict == Verdict.COMPLETE:
            note = f"Covered ({', '.join(found['hits'][:4])})." if found["hits"] else "Covered."
        else:
            note = f"Not yet: {criterion['text']}."
            if found["min_words"] and found["words"] < found["min_words"]:
                note += f" Develop it further (about {found['min_words']} words or more; now {found['words']})."
        feedback = " ".join(filter(None, [note, (model.get("feedback") or "").strip()]))
        results.append(
            {
                "key": criterion["key"],
                "text": criterion["text"],
                "verdict": verdict,
                "decided_by": decided_by,
                "model_verdict": model.get("verdict", ""),
                "feedback": feedback[:400],
                "evidence": found,
            }
        )
    overall = Verdict.COMPLETE if all(r["verdict"] == Verdict.COMPLETE for r in results) else Verdict.NEEDS_REVISION
    with transaction.atomic():
        submission.criteria, submission.verdict, submission.evaluated = results, overall, True
        submission.save(update_fields=["criteria", "verdict", "evaluated"])
        log_event(
            team.run,
            "evaluated",
            "milestone",
            f"{submission.stage_key}/{submission.milestone_key}",
            team=team,
            actor_name="judge",
            result={
                "submission": submission.pk,
                "verdict": overall,
                "learner": submission.submitted_by.username,
                "criteria": {r["key"]: r["verdict"] for r in results},
            },
            context={"stage": submission.stage_key},
        )
        met = sum(r["verdict"] == Verdict.COMPLETE for r in results)
        summary = (
            f"Milestone “{milestone['title']}”: complete. "
            if overall == Verdict.COMPLETE
            else f"Milestone “{milestone['title']}”: needs revision ({met} of {len(results)} criteria met). "
        )
        summary += " ".join(r["feedback"] for r in results if r["verdict"] != Verdict.COMPLETE)[:600]
        note = ChatMessage.objects.create(
            team=team, kind=MessageKind.SYSTEM, text=summary.strip(), meta={"submission": submission.pk, "judge": True}
        )
        publish_team(team.pk, {"type": "pbl.message", "message_id": note.pk})
        from apps.pbl.milestones import maybe_advance
        from apps.pbl.services import trigger_orchestrator

        maybe_advance(team)
        trigger_orchestrator(submission.submitted_by_id, team.run_id)
    publish_team(team.pk, {"type": "pbl.refresh", "what": "stage"})
    return {"verdict": overall, "criteria": len(results)}
