"""PBL studio actions: who may do what, projects, runs and teams, the team chat. Each action
checks who may do it, changes the database, logs an Event, and publishes live updates after
commit; views and the API are thin wrappers around them. The other actions, by topic (as
zulip's actions/): deliverable.py (the shared document), milestones.py (submissions, the judge's
verdicts, stage advance), exams.py, board.py (tasks), replies.py (agent replies); present.py
reads a workspace for pages and the API."""

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Cohort, Role, User
from apps.accounts.permissions import can_access_area, has_role
from apps.jobs.services import create_job
from apps.pbl import schema, textutil
from apps.pbl.events import log_event, publish_team
from apps.pbl.models import (
    ChatMessage,
    MessageKind,
    MessageStatus,
    Project,
    ProjectRun,
    RunStatus,
    Task,
    Team,
)

MAX_MESSAGE_CHARS = 2000
MAX_AGENTS_PER_MESSAGE = 2
MENTION = re.compile(r"@([A-Za-z][A-Za-z0-9_]{1,19})\b")


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
        seed_tasks(team, user)
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
            seed_tasks(team, teacher)
            teams.append(team)
    return teams


def seed_tasks(team: Team, user: User) -> None:
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
