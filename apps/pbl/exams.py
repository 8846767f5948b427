"""PBL studio pre- and post-exams: questions without their keys, grading (multiple choice and
keyword rubrics), taking an exam once, and the learning gain."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.accounts.models import Role, User
from apps.pbl import textutil
from apps.pbl.events import log_event
from apps.pbl.models import ExamAttempt, ProjectRun, RunStatus
from apps.pbl.services import learner_team


def exam_questions(run: ProjectRun, kind: str) -> list[dict]:
    """The questions without their keys."""
    if kind not in ("pre", "post"):
        raise ValidationError("The exam is pre or post.")
    return [
        {key: value for key, value in question.items() if key in ("key", "kind", "prompt", "options", "points")}
        for question in run.project.spec["exams"][kind]
    ]


def grade_question(question: dict, answer) -> dict:
    points = float(question.get("points", 1))
    if question["kind"] == "mc":
        try:
            chosen = int(answer)
        except (TypeError, ValueError):
            chosen = None
        correct = chosen == question["answer"]
        return {
            "key": question["key"],
            "points": points if correct else 0.0,
            "max_points": points,
            "correct": correct,
            "feedback": "" if correct else f"The answer was: {question['options'][question['answer']]}",
        }
    text = str(answer or "")[:5000]
    rubric = question["rubric"]
    hits = textutil.keyword_hits(text, rubric["keywords"])
    need = rubric.get("min_matches", 1)
    earned = round(points * min(1.0, len(hits) / need), 2)
    feedback = f"Matched: {', '.join(hits)}." if hits else "Your answer did not mention the key ideas."
    if rubric.get("model_answer"):
        feedback += f" A good answer: {rubric['model_answer']}"
    return {
        "key": question["key"],
        "points": earned,
        "max_points": points,
        "correct": earned >= points,
        "feedback": feedback,
        "matched": hits,
    }


def submit_exam(user: User, run: ProjectRun, kind: str, answers: dict) -> ExamAttempt:
    if user.role != Role.STUDENT or not run.cohort.students.filter(pk=user.pk).exists():
        raise PermissionDenied("Only the class's students take its exams.")
    if run.status == RunStatus.DRAFT:
        raise ValidationError("This project has not started.")
    if kind not in ("pre", "post"):
        raise ValidationError("The exam is pre or post.")
    if kind == "post" and not ExamAttempt.objects.filter(run=run, learner=user, kind="pre").exists():
        raise ValidationError("Take the pre-exam first.")
    if not isinstance(answers, dict):
        raise ValidationError("Answers must map question keys to answers.")
    questions = run.project.spec["exams"][kind]
    graded = [grade_question(q, answers.get(q["key"])) for q in questions]
    with transaction.atomic():
        if ExamAttempt.objects.filter(run=run, learner=user, kind=kind).exists():
            raise ValidationError(f"You have already taken the {kind}-exam.")
        attempt = ExamAttempt.objects.create(
            run=run,
            learner=user,
            kind=kind,
            answers={q["key"]: answers.get(q["key"]) for q in questions},
            graded=graded,
            score=sum(g["points"] for g in graded),
            max_score=sum(g["max_points"] for g in graded),
        )
        team = learner_team(user, run)
        for item in graded:
            log_event(
                run,
                "answered",
                "question",
                f"{kind}/{item['key']}",
                team=team,
                actor=user,
                result={"score": item["points"], "max": item["max_points"], "correct": item["correct"]},
            )
        log_event(
            run,
            "completed",
            "exam",
            kind,
            team=team,
            actor=user,
            result={"score": attempt.score, "max": attempt.max_score, "scaled": round(attempt.fraction, 3)},
        )
    return attempt


def normalized_gain(pre: float | None, post: float | None) -> float | None:
    """Hake's normalized gain (post - pre) / (1 - pre) on 0..1 scores; None when undefined."""
    if pre is None or post is None or pre >= 1:
        return None
    return round((post - pre) / (1 - pre), 3)


def exam_summary(run: ProjectRun, user: User) -> dict:
    attempts = {a.kind: a for a in ExamAttempt.objects.filter(run=run, learner=user)}
    pre, post = attempts.get("pre"), attempts.get("post")
    return {
        "pre": pre.fraction if pre else None,
        "post": post.fraction if post else None,
        "gain": normalized_gain(pre.fraction if pre else None, post.fraction if post else None),
        "attempts": attempts,
    }
