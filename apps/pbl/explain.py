"""Plain-language explanations of what the orchestrator and the boundary policy decided.

Events keep the exact rule that fired ("help_requests+refusals 3 ≥ 3") for the export and
for research; people read these sentences instead. Teachers get the reason with its
numbers and the limit they set; learners get a short, kind reason and never the rule text."""

from apps.pbl.models import Event

SCAFFOLD_NAMES = {
    "hint": "a hint",
    "guiding_question": "a guiding question",
    "decomposition": "the stage broken into small steps",
    "worked_example": "a worked example of another problem",
    "reflection": "a prompt to reflect",
    "encourage_collaboration": "a nudge to share the work",
    "fading": "less support from now on",
}
REFUSAL_REASONS = {
    "wants_deliverable": "asked the agent to write finished work for the team",
    "verbatim_task": "pasted the assignment itself for the agent to answer whole",
    "injection": "tried to talk the agent out of its rules",
}
STUDENT_SCAFFOLD_REASONS = {
    "copy_events": "Part of your text matched an agent's words, so you were asked to put it in your own words.",
    "failed_submissions": "A milestone needed revising more than once, so you got help with the next step.",
    "help_requests+refusals": "You asked the agents for a lot of help in a short time, "
    "so you got a pointer to try the next step yourself.",
    "work_share": "One person was doing most of the writing, so the team was invited to share it.",
    "off_task_messages": "The chat drifted away from the project, so you got a question to refocus.",
    "success_streak": "You met milestones on the first try, so you get fewer hints now.",
    "idle_minutes": "Things had gone quiet for a while, so you got a nudge to keep going.",
    "overtime_ratio": "This stage was taking longer than planned, so it was broken into smaller steps.",
}


def _n(value, digits: int = 1) -> str:
    """3.0 -> "3", 2.46 -> "2.5"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.{digits}f}".rstrip("0").rstrip(".") if number != int(number) else str(int(number))


def _signal(rule: str) -> str:
    return (rule or "").split(" ", 1)[0]


def scaffold_for_teacher(result: dict, context: dict) -> str:
    """Why the orchestrator stepped in, with the learner's numbers and the run's limit."""
    who = result.get("for") or "The learner"
    kind = SCAFFOLD_NAMES.get(result.get("type", ""), (result.get("type") or "a scaffold").replace("_", " "))
    signals, th = context.get("signals") or {}, context.get("thresholds") or {}
    window = _n(th.get("window_minutes", 10))
    signal = _signal(result.get("rule", ""))
    if signal == "copy_events":
        why = (
            f"{who} pasted an agent's words into the deliverable {_n(signals.get('copy_events'))} time(s) "
            f"in {window} minutes (your limit: {_n(th.get('copy_events'))})"
        )
    elif signal == "failed_submissions":
        why = (
            f"{who}'s team had {_n(signals.get('failed_submissions'))} milestone submissions in a row judged "
            f"'needs revision' (your limit: {_n(th.get('failed_submissions'))})"
        )
    elif signal == "help_requests+refusals":
        why = (
            f"{who} asked the agents for help {_n(signals.get('help_requests'))} time(s) and had "
            f"{_n(signals.get('refusals'))} request(s) turned into guidance in {window} minutes "
            f"(your limit: {_n(th.get('help_requests'))} together), a sign of leaning on the agents"
        )
    elif signal == "work_share":
        share = float(signals.get("work_share") or 0)
        why = (
            f"{who} wrote {share:.0%} of the team's text in this stage "
            f"(your limit: {float(th.get('dominant_share', 0)):.0%})"
        )
    elif signal == "off_task_messages":
        why = (
            f"{who} sent {_n(signals.get('off_task_messages'))} off-task messages in {window} minutes "
            f"(your limit: {_n(th.get('off_task_messages'))})"
        )
    elif signal == "success_streak":
        why = (
            f"{who} met {_n(signals.get('success_streak'))} milestones on the first try "
            f"(your setting: {_n(th.get('fading_streak'))}), so support steps back"
        )
    elif signal == "idle_minutes":
        why = f"{who} had been inactive for {_n(signals.get('idle_minutes'))} minutes"
        why += f" (your limit: {_n(th.get('idle_minutes'))})" if th.get("idle_minutes") is not None else ""
    elif signal == "overtime_ratio":
        why = (
            f"{who}'s team has spent {_n(signals.get('overtime_ratio'))}× the expected time on this stage with "
            f"milestones still open (your limit: {_n(th.get('stage_overtime'))}×)"
        )
    else:
        why = f"{who} met one of the orchestrator's conditions"
    tier = result.get("tier")
    level = f" Pitched for a {tier}-confidence learner." if tier else ""
    return f"{why}, so the orchestrator posted {kind}.{level}"  # usernames keep their case


def scaffold_for_learner(result: dict) -> str:
    return STUDENT_SCAFFOLD_REASONS.get(_signal(result.get("rule", "")), "The studio offered some support.")


def refusal_for_teacher(verb: str, result: dict) -> str:
    """Why an agent gave guidance instead of what was asked."""
    to = result.get("to") or "a learner"
    if verb == "downgraded":
        words, limits = result.get("draft_words") or result.get("words"), result.get("limits") or {}
        coverage = result.get("coverage")
        detail = f"{_n(words)} words" if words is not None else "a long passage"
        if coverage is not None:
            detail += f" touching {float(coverage):.0%} of the stage's rubric points"
        limit = f" (the limit for this agent is about {limits['max_words']} words)" if limits.get("max_words") else ""
        return (
            f"The agent's draft reply to {to} read like finished work for this stage: {detail}{limit}. "
            "It was replaced with guidance before anyone saw it."
        )
    what = REFUSAL_REASONS.get(result.get("reason", ""), "asked for more than the agent may give")
    how = {
        "rule": "a rule matched the wording",
        "nearest": "it closely resembled earlier examples of such requests",
        "model": "the assistant model classified it so",
    }.get(result.get("by", ""), "")
    return f"{to} {what}" + (f" ({how})" if how else "") + "; the agent gave guidance instead."


def event_for_teacher(event: Event) -> str:
    """One line for the dashboard's event log; "" where the result speaks for itself."""
    if event.verb == "scaffolded":
        return scaffold_for_teacher(event.result, event.context)
    if event.verb in ("refused", "downgraded"):
        return refusal_for_teacher(event.verb, event.result)
    if event.verb == "rated":
        verdict = "helpful" if event.result.get("helpful") else "not helpful"
        return f"Marked @{event.result.get('agent', '?')}'s reply {verdict}."
    if event.verb == "failed" and event.object_type == "message":
        return f"The agent could not answer ({event.result.get('error', 'unknown error')[:120]})."
    return ""
