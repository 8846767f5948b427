"""The teacher's dashboard, computed from the event log only (plus the teams' current stage
and the exam attempts the events point at). Plots are matplotlib SVG, inlined."""

import io
from collections import Counter, defaultdict
from datetime import timedelta

from django.utils import timezone

from apps.pbl.exams import normalized_gain
from apps.pbl.models import ChatMessage, Event, ExamAttempt, MilestoneSubmission, ProjectRun
from apps.pbl.orchestrator import ACTIVE_VERBS, SCAFFOLD_TYPES, thresholds_for

VERB_COLORS = {
    "posted": "#3657d6",
    "requested-help": "#8e44ad",
    "edited": "#1f8a4c",
    "copied": "#c0352b",
    "submitted": "#b26a00",
    "scaffolded": "#16a0a0",
    "refused": "#e67e22",
    "downgraded": "#e67e22",
    "off-task": "#7f8c8d",
    "completed": "#2c3e50",
    "answered": "#95a5a6",
}


def dashboard_data(run: ProjectRun, team_id: int | None = None, learner: str = "", verb: str = "") -> dict:
    now = timezone.now()
    th = thresholds_for(run)
    project = run.project
    events = list(Event.objects.filter(run=run).select_related("actor").order_by("timestamp", "pk"))
    teams = list(run.teams.prefetch_related("members").order_by("name"))
    exams = defaultdict(dict)
    for attempt in ExamAttempt.objects.filter(run=run):
        exams[attempt.learner_id][attempt.kind] = attempt.fraction

    by_actor = defaultdict(list)
    for event in events:
        by_actor[event.actor_name].append(event)
    stage_minutes = defaultdict(dict)  # team -> stage key -> minutes
    for event in events:
        if event.verb == "completed" and event.object_type == "stage" and event.team_id:
            stage_minutes[event.team_id][event.object_id] = event.result.get("minutes", 0)

    team_rows, learner_rows = [], []
    for team in teams:
        stage = team.stage
        met = len(
            {
                (e.context.get("stage"), e.object_id)
                for e in events
                if e.team_id == team.pk
                and (
                    (e.verb == "evaluated" and e.result.get("verdict") == "complete")
                    or (e.verb == "overrode" and e.result.get("verdict") == "complete")
                )
            }
        )
        total = sum(len(s["milestones"]) for s in project.stages)
        minutes = dict(stage_minutes[team.pk])
        if stage is not None:
            minutes[stage["key"]] = round((now - team.stage_started_at).total_seconds() / 60, 1)
        team_rows.append(
            {
                "team": team,
                "stage": stage,
                "stage_index": team.current_stage,
                "stages": len(project.stages),
                "milestones_met": met,
                "milestones_total": total,
                "minutes": minutes,
                "success": met / total if total else 0.0,
            }
        )
        for member in team.members.all():
            name = f"learner:{member.username}"
            mine = by_actor[name]
            scaffolds = Counter(
                e.result.get("type")
                for e in events
                if e.verb == "scaffolded" and e.result.get("for") == member.username
            )
            refusals = sum(
                1 for e in events if e.verb in ("refused", "downgraded") and e.result.get("to") == member.username
            )
            active = [e.timestamp for e in mine if e.verb in ACTIVE_VERBS]
            idle_periods = sum(
                1 for a, b in zip(active, active[1:], strict=False) if (b - a) > timedelta(minutes=th["idle_minutes"])
            )
            if active and team.finished_at is None and now - active[-1] > timedelta(minutes=th["idle_minutes"]):
                idle_periods += 1
            pre, post = exams[member.pk].get("pre"), exams[member.pk].get("post")
            learner_rows.append(
                {
                    "user": member,
                    "team": team,
                    "stage": stage,
                    "messages": sum(1 for e in mine if e.verb == "posted"),
                    "help_requests": sum(1 for e in mine if e.verb == "requested-help"),
                    "edits": sum(1 for e in mine if e.verb == "edited"),
                    "copies": sum(1 for e in mine if e.verb == "copied"),
                    "off_task": sum(1 for e in mine if e.verb == "off-task"),
                    "scaffolds": dict(scaffolds),
                    "scaffold_total": sum(scaffolds.values()),
                    "refusals": refusals,
                    "idle_periods": idle_periods,
                    "last_active": active[-1] if active else None,
                    "pre": pre,
                    "post": post,
                    "gain": normalized_gain(pre, post),
                }
            )

    agent_rows = []
    success_by_team = {row["team"].pk: row["success"] for row in team_rows}
    # Learner feedback: the latest rating of each learner on each reply counts (events in time order).
    latest_rating: dict[tuple[str, str], Event] = {}
    for event in events:
        if event.verb == "rated":
            latest_rating[(event.actor_name, event.object_id)] = event
    for agent in project.agents:
        ratings = [e for e in latest_rating.values() if e.result.get("agent") == agent["name"]]
        helpful = sum(1 for e in ratings if e.result.get("helpful"))
        turns = [e for e in events if e.verb == "replied" and e.actor_name == f"agent:{agent['name']}"]
        telling = sum(1 for e in turns if e.result.get("telling"))
        teams_helped = {e.team_id for e in turns}
        agent_rows.append(
            {
                "agent": agent,
                "turns": len(turns),
                "telling": telling,
                "telling_rate": telling / len(turns) if turns else None,
                "guided": sum(1 for e in turns if e.result.get("guided")),
                "draft_telling": sum(1 for e in turns if e.result.get("draft_telling")),
                "refused": sum(1 for e in events if e.verb == "refused" and e.actor_name == f"agent:{agent['name']}"),
                # SeaKR: replies for which the draft was unsure and the project's resources were retrieved.
                "retrieved": sum(1 for e in turns if (e.result.get("retrieval") or {}).get("fired")),
                "rated": len(ratings),
                "helpful": helpful,
                "not_helpful": len(ratings) - helpful,
                "helpful_rate": helpful / len(ratings) if ratings else None,
                "success": (sum(success_by_team.get(t, 0) for t in teams_helped) / len(teams_helped))
                if teams_helped
                else None,
            }
        )

    shown = events
    if team_id:
        shown = [e for e in shown if e.team_id == team_id]
    if learner:
        shown = [
            e
            for e in shown
            if e.actor_name == f"learner:{learner}" or e.result.get("for") == learner or e.result.get("to") == learner
        ]
    if verb:
        shown = [e for e in shown if e.verb == verb]
    gains = [row["gain"] for row in learner_rows if row["gain"] is not None]
    submissions = list(MilestoneSubmission.objects.filter(team__run=run).select_related("team", "submitted_by"))
    return {
        "run": run,
        "project": project,
        "thresholds": th,
        "teams": team_rows,
        "learners": learner_rows,
        "agents": agent_rows,
        "events": shown[-300:],
        "event_count": len(events),
        "verbs": sorted({e.verb for e in events}),
        "mean_gain": round(sum(gains) / len(gains), 3) if gains else None,
        "scaffold_types": SCAFFOLD_TYPES,
        "filters": {"team": team_id, "learner": learner, "verb": verb},
        "submissions": submissions[:30],
        "judge": judge_agreement(submissions),
    }


def judge_agreement(submissions: list[MilestoneSubmission]) -> dict:
    """How often the judge's verdict (model on the assistant role, with the text's evidence)
    matched the teacher's, over the submissions a teacher overrode: the judge's track record."""
    evaluated = [s for s in submissions if s.evaluated]
    overridden = [s for s in evaluated if s.override_verdict]
    agreed = sum(1 for s in overridden if s.override_verdict == s.verdict)
    by_model = sum(1 for s in evaluated for c in s.criteria or [] if c.get("decided_by") == "model")
    return {
        "evaluated": len(evaluated),
        "overridden": len(overridden),
        "agreed": agreed,
        "agreement": agreed / len(overridden) if overridden else None,
        "criteria_by_model": by_model,
        "criteria": sum(len(s.criteria or []) for s in evaluated),
    }


def transcripts(run: ProjectRun, team_id: int | None = None) -> list[dict]:
    out = []
    for team in run.teams.order_by("name"):
        if team_id and team.pk != team_id:
            continue
        out.append({"team": team, "messages": list(ChatMessage.objects.filter(team=team).select_related("author"))})
    return out


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype for inlining


def timeline_svg(data: dict) -> str:
    """One row per learner, one mark per event, coloured by verb."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    learners = [row["user"].username for row in data["learners"]]
    if not learners:
        return ""
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(learners) + 1.2))
    events = Event.objects.filter(run=data["run"]).order_by("timestamp")
    seen = set()
    for event in events:
        name = (
            event.actor_name.partition(":")[2] if event.actor_name.startswith("learner:") else event.result.get("for")
        )
        if name not in learners:
            continue
        color = VERB_COLORS.get(event.verb, "#bbbbbb")
        label = event.verb if event.verb not in seen else None
        seen.add(event.verb)
        ax.scatter(
            [event.timestamp],
            [learners.index(name)],
            color=color,
            s=28,
            label=label,
            marker="|" if event.verb == "edited" else "o",
        )
    ax.set_yticks(range(len(learners)), learners)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    if seen:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.set_title("Timeline per learner", fontsize=10, loc="left")
    return _svg(fig)


def scaffolds_svg(data: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["learners"]
    if not rows:
        return ""
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(rows) + 1.2))
    left = [0] * len(rows)
    palette = ["#3657d6", "#16a0a0", "#b26a00", "#8e44ad", "#1f8a4c", "#e67e22", "#7f8c8d"]
    names = [row["user"].username for row in rows]
    for kind, color in zip(SCAFFOLD_TYPES, palette, strict=True):
        values = [row["scaffolds"].get(kind, 0) for row in rows]
        if any(values):
            ax.barh(names, values, left=left, color=color, label=kind.replace("_", " "))
            left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("Scaffolds received, by type", fontsize=10, loc="left")
    if any(left):
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    return _svg(fig)


def gain_svg(data: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in data["learners"] if row["pre"] is not None]
    if not rows:
        return ""
    fig, ax = plt.subplots(figsize=(5, 2.8))
    names = [row["user"].username for row in rows]
    positions = range(len(rows))
    ax.bar([p - 0.2 for p in positions], [row["pre"] for row in rows], width=0.4, color="#b8c4f2", label="pre")
    ax.bar([p + 0.2 for p in positions], [row["post"] or 0 for row in rows], width=0.4, color="#3657d6", label="post")
    ax.set_xticks(list(positions), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Exam scores (share correct)", fontsize=10, loc="left")
    return _svg(fig)


def telling_svg(data: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in data["agents"] if row["turns"]]
    if not rows:
        return ""
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    for row in rows:
        ax.scatter(row["telling_rate"], row["success"] or 0, s=30 + 10 * row["turns"], color="#3657d6", alpha=0.7)
        ax.annotate(
            row["agent"]["name"],
            (row["telling_rate"], row["success"] or 0),
            fontsize=8,
            xytext=(5, 3),
            textcoords="offset points",
        )
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("telling rate", fontsize=8)
    ax.set_ylabel("milestones met (share)", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("Agents: telling vs learner success", fontsize=10, loc="left")
    return _svg(fig)


def plots(data: dict) -> dict:
    return {
        "timeline": timeline_svg(data),
        "scaffolds": scaffolds_svg(data),
        "gain": gain_svg(data),
        "telling": telling_svg(data),
    }


def api_payload(data: dict) -> dict:
    """The dashboard as JSON."""
    return {
        "run": {"id": data["run"].pk, "status": data["run"].status, "project": data["project"].title},
        "thresholds": data["thresholds"],
        "mean_gain": data["mean_gain"],
        "judge": data["judge"],
        "teams": [
            {
                "id": r["team"].pk,
                "name": r["team"].name,
                "stage_index": r["stage_index"],
                "stage": r["stage"]["key"] if r["stage"] else None,
                "milestones_met": r["milestones_met"],
                "milestones_total": r["milestones_total"],
                "minutes_per_stage": r["minutes"],
            }
            for r in data["teams"]
        ],
        "learners": [
            {
                "username": r["user"].username,
                "team": r["team"].name,
                "messages": r["messages"],
                "help_requests": r["help_requests"],
                "edits": r["edits"],
                "copies": r["copies"],
                "off_task": r["off_task"],
                "scaffolds": r["scaffolds"],
                "refusals": r["refusals"],
                "idle_periods": r["idle_periods"],
                "pre": r["pre"],
                "post": r["post"],
                "gain": r["gain"],
            }
            for r in data["learners"]
        ],
        "agents": [
            {
                "name": r["agent"]["name"],
                "role": r["agent"]["role"],
                "strictness": r["agent"].get("strictness"),
                "turns": r["turns"],
                "telling": r["telling"],
                "telling_rate": r["telling_rate"],
                "guided": r["guided"],
                "refused": r["refused"],
                "draft_telling": r["draft_telling"],
                "learner_success": r["success"],
                "rated": r["rated"],
                "helpful": r["helpful"],
                "not_helpful": r["not_helpful"],
                "helpful_rate": r["helpful_rate"],
                "retrieved": r["retrieved"],
            }
            for r in data["agents"]
        ],
    }
