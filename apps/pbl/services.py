"""PBL studio actions. Each one checks who may do it, changes the database, logs an Event,
and publishes live updates after commit. Views and the API are thin wrappers around these."""

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Cohort, Role, User
from apps.accounts.permissions import can_access_area, has_role
from apps.jobs.services import create_job
from apps.pbl import schema, textutil
from apps.pbl.events import log_event, publish_team
from apps.pbl.models import (
    ChatMessage,
    Document,
    DocumentVersion,
    ExamAttempt,
    MessageKind,
    MessageStatus,
    MilestoneSubmission,
    Project,
    ProjectRun,
    RunStatus,
    Task,
    Team,
    Verdict,
)

MAX_MESSAGE_CHARS = 2000
MAX_DOCUMENT_CHARS = 100_000
MAX_AGENTS_PER_MESSAGE = 2
MENTION = re.compile(r"@([A-Za-z][A-Za-z0-9_]{1,19})\b")
# A run of this many words shared with a recent agent message counts as copying agent text.
COPY_RUN_WORDS = 12


# ---- who may do what -------------------------------------------------------------------------


def is_run_teacher(user, run: ProjectRun) -> bool:
    """The cohort's teacher (or an admin) runs the project and sees its dashboard."""
    if not has_role(user, Role.TEACHER):
        return False
    return user.is_superuser or user.role == Role.ADMIN or run.cohort.teacher_id == user.pk


def require_run_teacher(user, run: ProjectRun) -> None:
    if not is_run_teacher(user, run):
        raise PermissionDenied("Only the teacher of this class can do this.")


def can_view_team(user, team: Team) -> bool:
    if not can_access_area(user, "pbl"):
        return False
    return team.members.filter(pk=user.pk).exists() or is_run_teacher(user, team.run)


def require_member(user, team: Team) -> None:
    """Learner actions in a workspace: only the team's own members."""
    if not can_access_area(user, "pbl") or not team.members.filter(pk=user.pk).exists():
        raise PermissionDenied("This is another team's workspace.")


def require_open(run: ProjectRun) -> None:
    if run.status != RunStatus.OPEN:
        raise ValidationError(
            "This project is not open right now."
            if run.status == RunStatus.DRAFT
            else "This project is closed; the workspace is read-only."
        )


def require_project_owner(user, project: Project) -> None:
    if not (
        has_role(user, Role.TEACHER) and (user.pk == project.owner_id or user.role == Role.ADMIN or user.is_superuser)
    ):
        raise PermissionDenied("Only the project's author can change it.")


# ---- projects ----------------------------------------------------------------------------


def create_project(owner: User, data: dict) -> Project:
    if not has_role(owner, Role.TEACHER):
        raise PermissionDenied("Only teachers author projects.")
    spec = schema.validate_project(data)
    return Project.objects.create(
        owner=owner, title=spec["title"], driving_question=spec["driving_question"], spec=spec
    )


def update_project(user: User, project: Project, data: dict) -> Project:
    require_project_owner(user, project)
    spec = schema.validate_project(data)
    project.title, project.driving_question, project.spec = spec["title"], spec["driving_question"], spec
    project.save()
    return project


def set_agent_strictness(user: User, project: Project, name: str, strictness: str) -> None:
    require_project_owner(user, project)
    if strictness not in schema.STRICTNESS:
        raise ValidationError(f"Strictness must be one of {', '.join(schema.STRICTNESS)}.")
    agent = project.agent(name)
    if agent is None:
        raise ValidationError(f"No agent called {name}.")
    agent["strictness"] = strictness
    project.save(update_fields=["spec", "updated_at"])


def teacher_projects(user: User):
    if user.role == Role.ADMIN or user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(owner=user)


# ---- runs and teams ----------------------------------------------------------------------


def create_run(teacher: User, project: Project, cohort: Cohort) -> ProjectRun:
    require_project_owner(teacher, project)
    if not (cohort.teacher_id == teacher.pk or teacher.role == Role.ADMIN or teacher.is_superuser):
        raise PermissionDenied("You can only run projects with your own classes.")
    return ProjectRun.objects.create(project=project, cohort=cohort)


def set_run_status(teacher: User, run: ProjectRun, status: str) -> ProjectRun:
    require_run_teacher(teacher, run)
    if status not in (RunStatus.OPEN, RunStatus.CLOSED):
        raise ValidationError("A run can be opened or closed.")
    with transaction.atomic():
        run.status = status
        if status == RunStatus.OPEN:
            run.started_at = run.started_at or timezone.now()
            run.closed_at = None
        else:
            run.closed_at = timezone.now()
        run.save()
        log_event(run, "updated", "run", run.pk, actor=teacher, result={"status": status})
    return run


def set_thresholds(teacher: User, run: ProjectRun, values: dict) -> dict:
    from apps.pbl.orchestrator import clean_thresholds

    require_run_teacher(teacher, run)
    run.thresholds = clean_thresholds(values)
    run.save(update_fields=["thresholds"])
    log_event(run, "updated", "thresholds", run.pk, actor=teacher, result=run.thresholds)
    return run.thresholds


def learner_team(user: User, run: ProjectRun) -> Team | None:
    return run.teams.filter(members=user).first()


def join_team(user: User, run: ProjectRun, team_name: str) -> Team:
    """A learner forms or joins a team (1-4 learners) in a run of their cohort."""
    if user.role != Role.STUDENT:
        raise PermissionDenied("Only students join teams.")
    if not run.cohort.students.filter(pk=user.pk).exists():
        raise PermissionDenied("Join the class first (with its code).")
    if run.status == RunStatus.CLOSED:
        raise ValidationError("This project is closed.")
    name = " ".join(team_name.split())[:80]
    if not name:
        raise ValidationError("Give your team a name.")
    with transaction.atomic():
        current = learner_team(user, run)
        if current is not None:
            raise ValidationError(f"You are already in team {current.name}.")
        team, created = Team.objects.select_for_update().get_or_create(run=run, name=name)
        if team.members.count() >= Team.MAX_MEMBERS:
            raise ValidationError(f"Team {name} is full ({Team.MAX_MEMBERS} learners).")
        team.members.add(user)
        log_event(run, "joined", "team", team.pk, team=team, actor=user, result={"created": created})
        _seed_tasks(team, user)
    publish_team(team.pk, {"type": "pbl.refresh", "what": "members"})
    return team


def form_teams(teacher: User, run: ProjectRun, size: int = 3) -> list[Team]:
    """Put every cohort student without a team into new teams of `size` (1-4)."""
    require_run_teacher(teacher, run)
    if not 1 <= size <= Team.MAX_MEMBERS:
        raise ValidationError(f"Team size must be 1 to {Team.MAX_MEMBERS}.")
    placed = set(run.teams.values_list("members", flat=True))
    waiting = [s for s in run.cohort.students.order_by("username") if s.pk not in placed]
    teams = []
    with transaction.atomic():
        number = run.teams.count()
        for start in range(0, len(waiting), size):
            number += 1
            name = f"Team {number}"
            while run.teams.filter(name=name).exists():
                number += 1
                name = f"Team {number}"
            team = Team.objects.create(run=run, name=name)
            team.members.add(*waiting[start : start + size])
            log_event(
                run,
                "updated",
                "team",
                team.pk,
                team=team,
                actor=teacher,
                result={"members": [u.username for u in waiting[start : start + size]]},
            )
            _seed_tasks(team, teacher)
            teams.append(team)
    return teams


def _seed_tasks(team: Team, user: User) -> None:
    """The authored tasks of the current stage start the board (once per team and stage)."""
    stage = team.stage
    if stage is None or team.tasks.filter(stage_key=stage["key"]).exists():
        return
    for title in stage.get("tasks", []):
        Task.objects.create(team=team, title=title, stage_key=stage["key"], created_by=user)


def student_runs(user: User):
    return (
        ProjectRun.objects.filter(cohort__students=user)
        .exclude(status=RunStatus.DRAFT)
        .select_related("project", "cohort")
    )


def teacher_runs(user: User):
    runs = ProjectRun.objects.select_related("project", "cohort")
    if user.role == Role.ADMIN or user.is_superuser:
        return runs
    return runs.filter(cohort__teacher=user)


# ---- the deliverable document ------------------------------------------------------------


def get_document(team: Team, stage_key: str | None = None) -> Document:
    stage = team.run.project.stage_by_key(stage_key) if stage_key else team.stage
    if stage is None:
        stage = team.run.project.stages[-1]
    document, _ = Document.objects.get_or_create(
        team=team, stage_key=stage["key"], defaults={"text": stage["deliverable"].get("template", "")}
    )
    return document


def recent_agent_texts(team: Team, limit: int = 20) -> list[ChatMessage]:
    return list(
        team.messages.filter(kind__in=[MessageKind.AGENT, MessageKind.ORCHESTRATOR])
        .exclude(text="")
        .order_by("-created_at")[:limit]
    )


def save_document(user: User, team: Team, text: str, base_version: int, stage_key: str | None = None) -> dict:
    """Save a learner's edit with optimistic concurrency. Edited from an older version, the
    edit is merged with what others saved since (different lines) or kept beside it with
    conflict markers (same lines). Returns {"outcome": saved|merged|conflict|unchanged, ...}."""
    require_member(user, team)
    require_open(team.run)
    if not isinstance(text, str):
        raise ValidationError("The document must be text.")
    if len(text) > MAX_DOCUMENT_CHARS:
        raise ValidationError(f"The document is too long ({len(text)} characters; the limit is {MAX_DOCUMENT_CHARS}).")
    text = text.replace("\r\n", "\n")
    current = team.stage or team.run.project.stages[-1]
    if stage_key and stage_key != current["key"]:
        raise ValidationError("This stage's deliverable is finished; reload to work on the current stage.")
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=get_document(team, stage_key).pk)
        if base_version > document.version or base_version < 0:
            raise ValidationError(f"Version {base_version} does not exist (the newest is {document.version}).")
        outcome, merged_text = "saved", text
        if base_version != document.version:
            base_text = _base_text(document, base_version)
            latest = document.versions.order_by("-number").first()
            result = textutil.merge3(
                base_text,
                text,
                document.text,
                ours_label=f"{user.username} (your edit)",
                theirs_label=f"{latest.author.username} (version {document.version})",
            )
            merged_text = result.text
            outcome = "conflict" if result.conflict else "merged"
        if merged_text == document.text:
            return {"outcome": "unchanged", "version": document.version, "text": document.text}
        previous = document.text
        document.version += 1
        document.text = merged_text
        document.save(update_fields=["version", "text"])
        added = _added_text(previous, merged_text)
        version = DocumentVersion.objects.create(
            document=document,
            number=document.version,
            text=merged_text,
            author=user,
            base_number=base_version,
            merged=outcome == "merged",
            conflict=outcome == "conflict",
            chars_added=len(added),
        )
        log_event(
            team.run,
            "edited",
            "document",
            f"{team.pk}:{document.stage_key}",
            team=team,
            actor=user,
            result={
                "version": version.number,
                "outcome": outcome,
                "chars_added": len(added),
                "chars_removed": max(0, len(previous) - len(merged_text) + len(added)),
            },
            context={"stage": document.stage_key},
        )
        copied = detect_copy(team, added)
        if copied is not None:
            log_event(
                team.run,
                "copied",
                "document",
                f"{team.pk}:{document.stage_key}",
                team=team,
                actor=user,
                result=copied,
                context={"stage": document.stage_key},
            )
            trigger_orchestrator(user.pk, team.run_id)
    publish_team(team.pk, {"type": "pbl.document", "version": version.number, "author": user.username})
    return {"outcome": outcome, "version": version.number, "text": merged_text, "copied": copied is not None}


def _base_text(document: Document, number: int) -> str:
    if number == 0:
        stage = document.team.run.project.stage_by_key(document.stage_key)
        return stage["deliverable"].get("template", "") if stage else ""
    version = document.versions.filter(number=number).first()
    return version.text if version else ""


def _added_text(before: str, after: str) -> str:
    """The lines (and words) that are new in `after`."""
    from difflib import SequenceMatcher

    old, new = before.split(), after.split()
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    return " ".join(
        " ".join(new[j1:j2]) for tag, _i1, _i2, j1, j2 in matcher.get_opcodes() if tag in ("insert", "replace")
    )


def detect_copy(team: Team, added: str) -> dict | None:
    """Added text sharing a long run of words with a recent agent message counts as copied."""
    if len(textutil.words(added)) < COPY_RUN_WORDS:
        return None
    for message in recent_agent_texts(team):
        run = textutil.longest_common_run(added, message.text)
        if run >= COPY_RUN_WORDS:
            return {"from": message.speaker, "message": message.pk, "shared_words": run}
    return None


def document_versions(team: Team, stage_key: str | None = None):
    return get_document(team, stage_key).versions.select_related("author")


# ---- chat --------------------------------------------------------------------------------


def project_vocabulary(project: Project) -> set[str]:
    spec = project.spec
    parts = [spec["title"], spec["driving_question"], *spec["goals"]]
    for stage in spec["stages"]:
        parts += [stage["title"], stage.get("goal", ""), stage["deliverable"]["prompt"], *stage.get("tasks", [])]
        for milestone in stage["milestones"]:
            parts += [milestone["title"], *(c["text"] for c in milestone["criteria"])]
            parts += [k for c in milestone["criteria"] for k in c.get("keywords", [])]
    parts += [r["text"] for r in spec.get("resources", [])]
    parts += [
        "project",
        "team",
        "task",
        "stage",
        "milestone",
        "help",
        "idea",
        "plan",
        "write",
        "draft",
        "question",
        "deliverable",
        "agree",
        "source",
        "research",
        "evidence",
        "hello",
        "thanks",
    ]
    return textutil.content_words(" ".join(parts))


def is_off_task(project: Project, text: str) -> bool:
    """Several content words and none of them about the project."""
    words = textutil.content_words(text)
    return len(words) >= 3 and not (words & project_vocabulary(project))


def post_message(user: User, team: Team, text: str) -> dict:
    """A learner's chat message. Agents addressed with @name answer in a gpu job; the
    learner's message is saved first, so a stopped model worker loses nothing."""
    require_member(user, team)
    require_open(team.run)
    text = (text or "").strip()
    if not text:
        raise ValidationError("Write a message first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValidationError(f"The message is too long ({len(text)} characters; the limit is {MAX_MESSAGE_CHARS}).")
    project = team.run.project
    named, agents, unknown = [], [], []
    for name in MENTION.findall(text):
        agent = project.agent(name)
        if agent is None:
            unknown.append(name)
        elif agent["name"] not in named:
            named.append(agent["name"])
            agents.append(agent)
    agents = agents[:MAX_AGENTS_PER_MESSAGE]
    stage = team.stage or project.stages[-1]
    with transaction.atomic():
        message = ChatMessage.objects.create(team=team, kind=MessageKind.LEARNER, author=user, text=text)
        log_event(
            team.run,
            "posted",
            "message",
            message.pk,
            team=team,
            actor=user,
            result={"chars": len(text), "to": [a["name"] for a in agents]},
            context={"stage": stage["key"]},
        )
        replies = []
        for agent in agents:
            log_event(
                team.run,
                "requested-help",
                "agent",
                agent["name"],
                team=team,
                actor=user,
                result={"message": message.pk},
                context={"stage": stage["key"]},
            )
            job = create_job(user, "pbl.agent_reply", {"team": team.pk})
            replies.append(
                ChatMessage.objects.create(
                    team=team,
                    kind=MessageKind.AGENT,
                    agent_name=agent["name"],
                    status=MessageStatus.PENDING,
                    reply_to=message,
                    job=job,
                    meta={"strictness": agent.get("strictness", "medium")},
                )
            )
        if not agents and is_off_task(project, text):
            log_event(
                team.run, "off-task", "message", message.pk, team=team, actor=user, context={"stage": stage["key"]}
            )
        if unknown:
            names = ", ".join(f"@{a['name']}" for a in project.agents)
            replies.append(
                ChatMessage.objects.create(
                    team=team,
                    kind=MessageKind.SYSTEM,
                    reply_to=message,
                    text=f"There is no agent called @{unknown[0]}. You can ask {names}.",
                )
            )
    for reply in [message, *replies]:
        publish_team(team.pk, {"type": "pbl.message", "message_id": reply.pk})
    if agents:
        trigger_orchestrator(user.pk, team.run_id)
    return {"message": message, "replies": replies}


def trigger_orchestrator(user_id: int, run_id: int) -> None:
    """Event trigger: look at this learner's signals soon (the beat loop also does it regularly)."""
    from config.celery import app as celery_app

    transaction.on_commit(lambda: celery_app.send_task("pbl.orchestrate_learner", args=[run_id, user_id]))


def visible_messages(team: Team, limit: int = 200) -> list[ChatMessage]:
    messages = team.messages.select_related("author", "job").order_by("-created_at", "-pk")[:limit]
    return list(reversed(messages))


# ---- milestones --------------------------------------------------------------------------


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
            _seed_tasks(team, first)
    message = ChatMessage.objects.create(team=team, kind=MessageKind.SYSTEM, text=text)
    publish_team(team.pk, {"type": "pbl.message", "message_id": message.pk})
    publish_team(team.pk, {"type": "pbl.refresh", "what": "stage"})
    return True


# ---- exams -------------------------------------------------------------------------------


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


# ---- reading a workspace -----------------------------------------------------------------


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
