"""WebSockets: a team's workspace (chat messages, streamed agent text, stage, tasks and
document changes) and a run's live dashboard. Both check access like the pages do."""

import asyncio
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.utils.html import escape

from apps.jobs.consumers import CLOSE_FORBIDDEN
from apps.pbl import dashboard, present, services
from apps.pbl.events import run_group, team_group
from apps.pbl.models import ChatMessage, ProjectRun, Team


def _int(value: list[str] | None) -> int:
    return int(value[0]) if value and value[0].isdigit() else 0


def _team_for(user, team_id: int) -> Team | None:
    team = Team.objects.select_related("run__project", "run__cohort").filter(pk=team_id).first()
    return team if team is not None and services.can_view_team(user, team) else None


def render_message(message_id: int, user, team_id: int) -> tuple[int, str] | None:
    message = ChatMessage.objects.select_related("author", "job").filter(pk=message_id, team_id=team_id).first()
    if message is None:
        return None
    return message.pk, render_to_string("pbl/workspace.html#message", {"m": message, "user": user})


def render_panels(user, team_id: int) -> str:
    team = Team.objects.select_related("run__project").get(pk=team_id)
    state = present.workspace_state(user, team)
    state.pop("chat_messages")
    return render_to_string("pbl/workspace.html#live-panels", {**state, "user": user, "oob": True})


class TeamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.team_id = self.scope["url_route"]["kwargs"]["team_id"]
        self.user = self.scope.get("user")
        team = await database_sync_to_async(_team_for)(self.user, self.team_id)
        if team is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        # Messages up to this id are already on the page: later ones are appended, earlier ones replaced.
        self.last_rendered = _int(query.get("after"))
        self.group = team_group(self.team_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # Anything posted between the page render and joining the group is sent now.
        newer = await database_sync_to_async(
            lambda: list(
                ChatMessage.objects.filter(team_id=self.team_id, pk__gt=self.last_rendered).values_list("pk", flat=True)
            )
        )()
        for message_id in newer:
            await self.pbl_message({"message_id": message_id})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def pbl_message(self, event: dict) -> None:
        rendered = await database_sync_to_async(render_message)(event["message_id"], self.user, self.team_id)
        if rendered is None:
            return
        message_id, html = rendered
        if message_id > self.last_rendered:
            self.last_rendered = message_id
            await self.send(text_data=f'<div id="chat-log" hx-swap-oob="beforeend">{html}</div>')
        else:
            await self.send(text_data=html.replace('class="msg', 'hx-swap-oob="outerHTML" class="msg', 1))

    async def pbl_delta(self, event: dict) -> None:
        # Streamed agent text, already passed by the boundary policy (see agents.answer).
        await self.send(
            text_data=f'<div id="msg-{event["message_id"]}-text" hx-swap-oob="beforeend">{escape(event["text"])}</div>'
        )

    async def pbl_refresh(self, event: dict) -> None:
        await self.send(text_data=await database_sync_to_async(render_panels)(self.user, self.team_id))

    async def pbl_document(self, event: dict) -> None:
        await self.send(
            text_data=f'<div id="doc-remote" hx-swap-oob="true" data-version="{int(event["version"])}" '
            f'data-author="{escape(event["author"])}"></div>'
        )


def _dashboard_run(user, run_id: int) -> ProjectRun | None:
    run = ProjectRun.objects.select_related("project", "cohort").filter(pk=run_id).first()
    return run if run is not None and services.is_run_teacher(user, run) else None


def render_dashboard_live(run_id: int, filters: dict) -> str:
    run = ProjectRun.objects.select_related("project", "cohort").get(pk=run_id)
    data = dashboard.dashboard_data(
        run, filters.get("team") or None, filters.get("learner", ""), filters.get("verb", "")
    )
    return render_to_string("pbl/dashboard.html#live", {**data, "plots": dashboard.plots(data), "oob": True})


class DashboardConsumer(AsyncWebsocketConsumer):
    COALESCE_SECONDS = 1.0  # a burst of events re-renders once

    async def connect(self) -> None:
        self.run_id = self.scope["url_route"]["kwargs"]["run_id"]
        run = await database_sync_to_async(_dashboard_run)(self.scope.get("user"), self.run_id)
        if run is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.filters = {
            "team": _int(query.get("team")),
            "learner": (query.get("learner") or [""])[0],
            "verb": (query.get("verb") or [""])[0],
        }
        self.pending = False
        self.group = run_group(self.run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def pbl_event(self, event: dict) -> None:
        if not self.pending:
            self.pending = True
            self.render_task = asyncio.ensure_future(self.render_soon())

    async def render_soon(self) -> None:
        await asyncio.sleep(self.COALESCE_SECONDS)
        self.pending = False
        html = await database_sync_to_async(render_dashboard_live)(self.run_id, self.filters)
        await self.send(text_data=html)
