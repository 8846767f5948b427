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
