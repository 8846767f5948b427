"""The one event log: write statements, publish them to the dashboard, export them as
CSV or xAPI JSON. Orchestrator signals and dashboard figures are computed from here only."""

import csv
import io
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from apps.jobs.events import send_to_group
from apps.pbl.models import Event, ProjectRun, Team

XAPI_VERBS = {
    "joined": "http://adlnet.gov/expapi/verbs/registered",
    "posted": "http://adlnet.gov/expapi/verbs/commented",
    "requested-help": "http://adlnet.gov/expapi/verbs/asked",
    "replied": "http://adlnet.gov/expapi/verbs/responded",
    "refused": "https://atrium.example/xapi/verbs/refused",
    "downgraded": "https://atrium.example/xapi/verbs/downgraded",
    "edited": "https://atrium.example/xapi/verbs/edited",
    "copied": "https://atrium.example/xapi/verbs/copied",
    "submitted": "http://adlnet.gov/expapi/verbs/attempted",
    "evaluated": "http://adlnet.gov/expapi/verbs/scored",
    "overrode": "https://atrium.example/xapi/verbs/overrode",
    "completed": "http://adlnet.gov/expapi/verbs/completed",
    "advanced": "http://adlnet.gov/expapi/verbs/progressed",
    "scaffolded": "https://atrium.example/xapi/verbs/scaffolded",
    "answered": "http://adlnet.gov/expapi/verbs/answered",
    "off-task": "https://atrium.example/xapi/verbs/off-task",
    "updated": "https://atrium.example/xapi/verbs/updated",
    "rated": "https://atrium.example/xapi/verbs/rated",
    "cancelled": "https://atrium.example/xapi/verbs/cancelled",
    "retried": "https://atrium.example/xapi/verbs/retried",
    "failed": "http://adlnet.gov/expapi/verbs/failed",
}

CSV_FIELDS = ["id", "timestamp", "run", "team", "actor", "verb", "object_type", "object_id", "result", "context"]


def run_group(run_id: int) -> str:
    return f"pbl-run-{run_id}"


def team_group(team_id: int) -> str:
    return f"pbl-team-{team_id}"


def actor_label(user) -> str:
    return f"learner:{user.username}" if user.role == "student" else f"{user.role}:{user.username}"


def log_event(
    run: ProjectRun | None,
    verb: str,
    object_type: str,
    object_id: str | int = "",
    *,
    team: Team | None = None,
    actor=None,
    actor_name: str = "",
    result: dict | None = None,
    context: dict | None = None,
    timestamp=None,
) -> Event:
    """Append one statement; the run's dashboards hear about it after commit. `timestamp` is
    for callers that act on a given clock (the orchestrator's decisions at its `now`)."""
    event = Event.objects.create(
        timestamp=timestamp or timezone.now(),
        run=run,
        team=team,
        actor=actor,
        actor_name=actor_name or (actor_label(actor) if actor is not None else "system"),
        verb=verb,
        object_type=object_type,
        object_id=str(object_id),
        result=result or {},
        context=context or {},
    )
    if run is not None:
        run_id, event_id = run.pk, event.pk
        transaction.on_commit(lambda: _publish(run_group(run_id), {"type": "pbl.event", "event_id": event_id}))
    return event


def _publish(group: str, message: dict) -> None:
    try:
        send_to_group(group, message)
    except Exception:  # noqa: BLE001  (a missed live update must never undo the action; pages reload from the DB)
        import logging

        logging.getLogger(__name__).warning("could not publish to %s", group, exc_info=True)


def publish_team(team_id: int, message: dict) -> None:
    transaction.on_commit(lambda: _publish(team_group(team_id), message))


def xapi_statement(event: Event) -> dict:
    """The event as an xAPI statement (actor, verb, object, result, context, timestamp)."""
    kind, _, name = event.actor_name.partition(":")
    actor = {
        "objectType": "Agent",
        "name": name or kind,
        "account": {"homePage": "urn:atrium", "name": event.actor_name},
    }
    statement = {
        "id": f"urn:atrium:pbl:event:{event.pk}",
        "actor": actor,
        "verb": {
            "id": XAPI_VERBS.get(event.verb, f"https://atrium.example/xapi/verbs/{event.verb}"),
            "display": {"en-US": event.verb},
        },
        "object": {
            "objectType": "Activity",
            "id": f"urn:atrium:pbl:{event.object_type}:{event.object_id}",
            "definition": {"type": f"https://atrium.example/xapi/activities/{event.object_type}"},
        },
        "result": event.result,
        "context": {
            "registration": None,
            "extensions": {
                "urn:atrium:run": event.run_id,
                "urn:atrium:team": event.team_id,
                **{f"urn:atrium:{key}": value for key, value in event.context.items()},
            },
        },
        "timestamp": event.timestamp.isoformat(),
    }
    return statement


def events_csv(events: Iterable[Event]) -> str:
    import json

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for event in events:
        row = [
            event.pk,
            event.timestamp.isoformat(),
            event.run_id,
            event.team_id or "",
            event.actor_name,
            event.verb,
            event.object_type,
            event.object_id,
            json.dumps(event.result, ensure_ascii=False),
            json.dumps(event.context, ensure_ascii=False),
        ]
        # Spreadsheet formula injection: a cell must not start with = + - @.
        writer.writerow(["'" + str(c) if str(c)[:1] in "=+-@" else c for c in row])
    return out.getvalue()
