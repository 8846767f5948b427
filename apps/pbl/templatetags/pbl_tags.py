from django import template

from apps.pbl.present import RETRYABLE_STATES, WAITING_STATES, message_state

register = template.Library()


@register.filter
def msg_state(message) -> dict:
    state, note = message_state(message)
    return {
        "state": state,
        "note": note,
        "waiting": state in WAITING_STATES,
        "retry": state in RETRYABLE_STATES,
        "streaming": state == "streaming",
    }


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def percent(value) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


@register.filter
def minutes(value) -> str:
    return "–" if value is None else f"{value:.0f} min"


@register.filter
def human(value) -> str:
    return str(value or "").replace("_", " ")


@register.filter
def result_text(result) -> str:
    """An event's result as "key value · key value" (lists joined, nested dicts as key=value)."""
    if not isinstance(result, dict):
        return str(result or "")
    parts = []
    for key, value in result.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = ", ".join(map(str, value)) or "–"
        parts.append(f"{human(key)} {value}")
    return " · ".join(parts)


@register.filter
def explain_event(event) -> str:
    """The teacher's plain-language line for an event ("" when its result reads as it is)."""
    from apps.pbl.explain import event_for_teacher

    return event_for_teacher(event)


@register.filter
def learner_reason(event) -> str:
    """Why a learner got a scaffold, in words for them (never the rule text)."""
    from apps.pbl.explain import scaffold_for_learner

    return scaffold_for_learner(event.result)
