"""The team's task board: add, edit, assign, move and delete tasks. Every change is an
Event and a live refresh of the board for teammates (the htmx page swaps the board only)."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts.models import User
from apps.pbl.events import log_event, publish_team
from apps.pbl.models import Task, TaskStatus, Team
from apps.pbl.services import require_member, require_open

MAX_TITLE_CHARS = 200


def _title(title: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise ValidationError("A task needs a title.")
    if len(title) > MAX_TITLE_CHARS:
        raise ValidationError(f"A task title has at most {MAX_TITLE_CHARS} characters.")
    return title


def _task(team: Team, task_id: int) -> Task:
    task = team.tasks.select_related("assignee").filter(pk=task_id).first()
    if task is None:
        raise ValidationError("No such task on this board.")
    return task


def _changed(team: Team, user: User, task: Task, result: dict) -> None:
    log_event(team.run, "updated", "task", task.pk, team=team, actor=user, result=result)
    publish_team(team.pk, {"type": "pbl.refresh", "what": "tasks"})


def add_task(user: User, team: Team, title: str) -> Task:
    require_member(user, team)
    require_open(team.run)
    title = _title(title)
    stage = team.stage or {}
    with transaction.atomic():
        task = Task.objects.create(team=team, title=title, stage_key=stage.get("key", ""), created_by=user)
        _changed(team, user, task, {"status": task.status, "new": True, "title": title})
    return task


def move_task(user: User, team: Team, task_id: int, status: str, assign_to_me: bool = False) -> Task:
    require_member(user, team)
    require_open(team.run)
    if status not in TaskStatus.values:
        raise ValidationError(f"Status must be one of {', '.join(TaskStatus.values)}.")
    with transaction.atomic():
        task = _task(team, task_id)
        task.status = status
        if assign_to_me or (status == TaskStatus.DOING and task.assignee_id is None):
            task.assignee = user
        task.save()
        _changed(team, user, task, {"status": status})
    return task


def edit_task(user: User, team: Team, task_id: int, *, title: str | None = None, assignee: str | None = None) -> Task:
    """Rename a task and/or assign it to a teammate by username ("" unassigns)."""
    require_member(user, team)
    require_open(team.run)
    with transaction.atomic():
        task = _task(team, task_id)
        result: dict = {}
        if title is not None:
            task.title = result["title"] = _title(title)
        if assignee is not None:
            name = assignee.strip()
            member = team.members.filter(username=name).first() if name else None
            if name and member is None:
                raise ValidationError(f"{name} is not in team {team.name}.")
            task.assignee = member
            result["assignee"] = member.username if member else None
        if not result:
            raise ValidationError("Nothing to change: give a title or an assignee.")
        task.save()
        _changed(team, user, task, result)
    return task


def delete_task(user: User, team: Team, task_id: int) -> None:
    require_member(user, team)
    require_open(team.run)
    with transaction.atomic():
        task = _task(team, task_id)
        title = task.title
        _changed(team, user, task, {"deleted": True, "title": title})
        task.delete()
