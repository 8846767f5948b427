"""The orchestrator: reads each learner's recent events, computes signals, and a policy
picks a scaffold adapted to the learner's proficiency tier. The scaffold is posted in the
team chat as the orchestrator and the decision is logged with its signals and thresholds.

Scaffold texts are templates filled from the project (reliable on a small model)."""

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.pbl import boundary
from apps.pbl.events import log_event, publish_team
from apps.pbl.models import (
    ChatMessage,
    Event,
    ExamAttempt,
    MessageKind,
    MilestoneSubmission,
    ProjectRun,
    RunStatus,
    Team,
    Verdict,
)

DEFAULT_THRESHOLDS: dict[str, float] = {
    "idle_minutes": 5,  # no activity for this long -> a scaffold
    "window_minutes": 10,  # how far back rates are counted
    "help_requests": 3,  # help requests + refusals in the window
    "failed_submissions": 2,  # consecutive needs-revision verdicts in the stage
    "copy_events": 1,  # agent text pasted into the deliverable
    "off_task_messages": 3,
    "stage_overtime": 1.5,  # time in stage / expected time, with milestones still open
    "dominant_share": 0.75,  # one learner's share of the team's writing
    "cooldown_minutes": 4,  # at most one scaffold per learner in this time
    "fading_streak": 2,  # milestones met first time before support fades
}
THRESHOLD_HELP = {
    "idle_minutes": "Minutes without activity before a scaffold",
    "window_minutes": "Minutes of history counted for rates",
    "help_requests": "Help requests and refusals in the window",
    "failed_submissions": "Failed milestone submissions in a row",
    "copy_events": "Pastes of agent text into the deliverable",
    "off_task_messages": "Off-task messages in the window",
    "stage_overtime": "Time in stage ÷ expected time",
    "dominant_share": "One learner's share of the writing",
    "cooldown_minutes": "Minutes between scaffolds for one learner",
    "fading_streak": "Milestones met first time before support fades",
}
SCAFFOLD_TYPES = [
    "hint",
    "guiding_question",
    "decomposition",
    "worked_example",
    "reflection",
    "encourage_collaboration",
    "fading",
]
TIERS = ["low", "mid", "high"]
ACTIVE_VERBS = ["posted", "edited", "updated", "submitted", "joined", "answered", "requested-help"]


def thresholds_for(run: ProjectRun) -> dict:
    return {**DEFAULT_THRESHOLDS, **(run.thresholds or {})}


def clean_thresholds(values: dict) -> dict:
    cleaned = {}
    for key, default in DEFAULT_THRESHOLDS.items():
        raw = values.get(key, default)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValidationError(f"{THRESHOLD_HELP[key]}: {raw!r} is not a number.") from None
        if value < 0 or (key == "dominant_share" and value > 1):
            raise ValidationError(f"{THRESHOLD_HELP[key]}: {value} is out of range.")
        cleaned[key] = value
    return cleaned


@dataclass
class Signals:
    idle_minutes: float
    help_requests: int
    refusals: int
    failed_submissions: int
    copy_events: int
    off_task_messages: int
    stage_minutes: float
    expected_minutes: float
    overtime_ratio: float
    milestones_met: int
    milestones_total: int
    work_share: float | None
    team_size: int
    success_streak: int
    pre_score: float | None
    tier: str
    support_level: int
    faded_level: int | None


def _tier(pre: float | None, streak: int, failed: int) -> str:
    base = 1 if pre is None else 0 if pre < 0.4 else 1 if pre < 0.75 else 2
    if streak >= 2:
        base += 1
    if failed >= 2:
        base -= 1
    return TIERS[max(0, min(2, base))]


def compute_signals(run: ProjectRun, team: Team, learner, now=None) -> Signals:
    now = now or timezone.now()
    th = thresholds_for(run)
    window_start = now - timedelta(minutes=th["window_minutes"])
    events = Event.objects.filter(run=run)
    mine = events.filter(actor=learner)
    last = mine.filter(verb__in=ACTIVE_VERBS).order_by("-timestamp").values_list("timestamp", flat=True).first()
    since = max(filter(None, [last, team.stage_started_at, run.started_at]))
    recent = mine.filter(timestamp__gte=window_start)
    refusals = events.filter(
        team=team, verb__in=["refused", "downgraded"], timestamp__gte=window_start, result__to=learner.username
    ).count()
    stage = team.stage
    submissions = list(MilestoneSubmission.objects.filter(team=team, evaluated=True).order_by("-created_at"))
    failed = 0
    for submission in submissions:
        if stage is None or submission.stage_key != stage["key"] or submission.effective_verdict == Verdict.COMPLETE:
            break
        failed += 1
    streak = 0
    for submission in submissions:
        if submission.effective_verdict != Verdict.COMPLETE:
            break
        streak += 1
    # Share of the writing in this stage: characters added by each member.
    shares: dict[int, int] = {}
    for actor_id, result in events.filter(team=team, verb="edited", timestamp__gte=team.stage_started_at).values_list(
        "actor_id", "result"
    ):
        shares[actor_id] = shares.get(actor_id, 0) + int(result.get("chars_added", 0))
    total = sum(shares.values())
    team_size = team.members.count()
    work_share = shares.get(learner.pk, 0) / total if total >= 200 and team_size > 1 else None
    pre = ExamAttempt.objects.filter(run=run, learner=learner, kind="pre").first()
    pre_score = pre.fraction if pre else None
    tier = _tier(pre_score, streak, failed)
    support = {"low": 3, "mid": 2, "high": 1}[tier]
    support = max(0, support - int(streak // max(1, th["fading_streak"])))
    faded = (
        events.filter(verb="scaffolded", result__for=learner.username, result__type="fading")
        .order_by("-timestamp")
        .values_list("result__support_level", flat=True)
        .first()
    )
    stage_minutes = (now - team.stage_started_at).total_seconds() / 60
    expected = float(stage.get("expected_minutes", 20)) if stage else 0.0
    milestones_total = len(stage["milestones"]) if stage else 0
    met = 0
    if stage:
        met = len(
            {
                s.milestone_key
                for s in submissions
                if s.stage_key == stage["key"] and s.effective_verdict == Verdict.COMPLETE
            }
        )
    return Signals(
        idle_minutes=round((now - since).total_seconds() / 60, 2),
        help_requests=recent.filter(verb="requested-help").count(),
        refusals=refusals,
        failed_submissions=failed,
        copy_events=recent.filter(verb="copied").count(),
        off_task_messages=recent.filter(verb="off-task").count(),
        stage_minutes=round(stage_minutes, 2),
        expected_minutes=expected,
        overtime_ratio=round(stage_minutes / expected, 2) if expected else 0.0,
        milestones_met=met,
        milestones_total=milestones_total,
        work_share=round(work_share, 3) if work_share is not None else None,
        team_size=team_size,
        success_streak=streak,
        pre_score=pre_score,
        tier=tier,
        support_level=support,
        faded_level=faded,
    )


def choose_scaffold(signals: Signals, th: dict) -> tuple[str, str] | None:
    """(scaffold type, the rule that fired) or None. The first rule that fires wins."""
    support = signals.support_level
    by_support = {3: "worked_example", 2: "hint", 1: "guiding_question", 0: "reflection"}
    if signals.copy_events >= th["copy_events"] > 0:
        return "reflection", f"copy_events {signals.copy_events} ≥ {th['copy_events']:g}"
    if signals.failed_submissions >= th["failed_submissions"] > 0:
        kind = {3: "worked_example", 2: "decomposition", 1: "hint", 0: "guiding_question"}[support]
        return kind, f"failed_submissions {signals.failed_submissions} ≥ {th['failed_submissions']:g}"
    if signals.help_requests + signals.refusals >= th["help_requests"] > 0:
        return by_support[support], (
            f"help_requests+refusals {signals.help_requests + signals.refusals} ≥ {th['help_requests']:g}"
        )
    if signals.work_share is not None and signals.work_share >= th["dominant_share"]:
        return "encourage_collaboration", f"work_share {signals.work_share:.2f} ≥ {th['dominant_share']:g}"
    if signals.off_task_messages >= th["off_task_messages"] > 0:
        return "guiding_question", f"off_task_messages {signals.off_task_messages} ≥ {th['off_task_messages']:g}"
    if signals.success_streak >= th["fading_streak"] > 0 and (
        signals.faded_level is None or signals.support_level < signals.faded_level
    ):
        return "fading", f"success_streak {signals.success_streak} ≥ {th['fading_streak']:g}"
    # Faded support: wait longer before stepping in.
    idle_limit = th["idle_minutes"] * (2 if signals.faded_level is not None else 1)
    if signals.milestones_total and signals.idle_minutes >= idle_limit > 0:
        kind = {3: "decomposition", 2: "hint", 1: "guiding_question", 0: "reflection"}[support]
        return kind, f"idle_minutes {signals.idle_minutes:g} ≥ {idle_limit:g}"
    if signals.milestones_met < signals.milestones_total and signals.overtime_ratio >= th["stage_overtime"] > 0:
        return "decomposition", f"overtime_ratio {signals.overtime_ratio:g} ≥ {th['stage_overtime']:g}"
    return None


WORKED_EXAMPLE = (
    "Here is a worked example on a *different* problem: a class wanted less litter in the playground. "
    "They (1) said who is affected and where (students at lunch, near the benches), "
    "(2) gave evidence (they counted 46 wrappers in one week), "
    "(3) set a goal they could measure (half as many wrappers in a month), and "
    "(4) chose one action and explained why (more bins near the benches, because that is where the litter was). "
    "Notice the pattern: who → evidence → measurable goal → justified action. "
    "Now try that pattern on your own {deliverable}."
)


def scaffold_text(kind: str, team: Team, learner, signals: Signals) -> str:
    project = team.run.project
    stage = team.stage or project.stages[-1]
    who = f"@{learner.username}"
    criteria = boundary.stage_targets(stage)["criteria"]
    open_criterion = criteria[min(signals.milestones_met, len(criteria) - 1)]["text"] if criteria else stage["title"]
    deliverable = stage["deliverable"]["title"].lower()
    resources = project.spec.get("resources", [])
    if kind == "hint":
        source = f" The resource “{resources[0]['title']}” is a good place to start." if resources else ""
        return (
            f"{who}, a hint: the rubric asks for this — “{open_criterion}”. Write one sentence about it first.{source}"
        )
    if kind == "guiding_question":
        return (
            f"{who}, a question to guide you: how does your {deliverable} show “{open_criterion.lower()}”? "
            "What evidence do you have?"
        )
    if kind == "decomposition":
        steps = "\n".join(f"{i}. {c['text']}" for i, c in enumerate(criteria[:5], 1))
        return (
            f"{who}, let's break “{stage['title']}” into smaller steps:\n{steps}\n"
            "Start with step 1: two sentences, in your own words."
        )
    if kind == "worked_example":
        return f"{who}, " + WORKED_EXAMPLE.format(deliverable=deliverable)
    if kind == "reflection":
        if signals.copy_events:
            return (
                f"{who}, pause and reflect: part of your last edit matches an agent's words. What does it mean, "
                "and do you agree? Rewrite it in your own words so it shows what your team thinks."
            )
        return (
            f"{who}, take a moment to reflect: what have you learned in “{stage['title']}” so far, "
            "and what is still unclear?"
        )
    if kind == "encourage_collaboration":
        others = [m for m in team.members.order_by("username") if m.pk != learner.pk]
        names = ", ".join(f"@{m.username}" for m in others)
        return (
            f"{who} has written most of the {deliverable} so far. {names}: which part will you take? "
            "Split the work on the task board and review each other's sections."
        )
    if kind == "fading":
        return (
            f"{who}, you have met {signals.success_streak} milestones on the first try. I'll step back and give "
            "fewer hints from now on. Ask an agent with @name whenever you need one."
        )
    raise ValueError(kind)


def orchestrate_learner(run: ProjectRun, team: Team, learner, now=None) -> ChatMessage | None:
    """Decide for one learner; post and log a scaffold if the policy picks one."""
    now = now or timezone.now()
    th = thresholds_for(run)
    with transaction.atomic():
        Team.objects.select_for_update().get(pk=team.pk)  # one decision at a time per team (beat vs triggers)
        last = (
            Event.objects.filter(run=run, verb="scaffolded", result__for=learner.username)
            .order_by("-timestamp")
            .values_list("timestamp", flat=True)
            .first()
        )
        if last is not None and now - last < timedelta(minutes=th["cooldown_minutes"]):
            return None
        signals = compute_signals(run, team, learner, now)
        choice = choose_scaffold(signals, th)
        if choice is None:
            return None
        kind, rule = choice
        text = scaffold_text(kind, team, learner, signals)
        message = ChatMessage.objects.create(
            team=team,
            kind=MessageKind.ORCHESTRATOR,
            text=text,
            meta={"type": kind, "for": learner.username, "rule": rule},
        )
        log_event(
            run,
            "scaffolded",
            "learner",
            learner.username,
            team=team,
            actor_name="orchestrator",
            result={
                "type": kind,
                "for": learner.username,
                "rule": rule,
                "tier": signals.tier,
                "support_level": signals.support_level,
                "message": message.pk,
            },
            context={"signals": asdict(signals), "thresholds": th, "stage": (team.stage or {}).get("key", "")},
            timestamp=now,
        )
    publish_team(team.pk, {"type": "pbl.message", "message_id": message.pk})
    return message


def orchestrate_run(run: ProjectRun, now=None) -> list[ChatMessage]:
    posted = []
    for team in run.teams.filter(finished_at__isnull=True).prefetch_related("members"):
        for learner in team.members.all():
            message = orchestrate_learner(run, team, learner, now)
            if message is not None:
                posted.append(message)
    return posted


def tick(now=None) -> int:
    """The beat loop: every open run, every team, every learner."""
    return sum(len(orchestrate_run(run, now)) for run in ProjectRun.objects.filter(status=RunStatus.OPEN))


def orchestrate_by_ids(run_id: int, user_id: int) -> ChatMessage | None:
    """The event trigger (a learner just asked for help, pasted, or got a verdict)."""
    run = ProjectRun.objects.filter(pk=run_id, status=RunStatus.OPEN).first()
    if run is None:
        return None
    team = run.teams.filter(members__pk=user_id, finished_at__isnull=True).first()
    if team is None:
        return None
    return orchestrate_learner(run, team, team.members.get(pk=user_id))
