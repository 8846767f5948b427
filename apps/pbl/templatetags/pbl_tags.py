from django import template

from apps.pbl.present import message_state

register = template.Library()


@register.filter
def msg_state(message) -> dict:
    state, note = message_state(message)
    return {"state": state, "note": note, "waiting": state in ("queued", "unavailable", "thinking")}


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
