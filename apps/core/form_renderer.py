"""Django's form renderer, with the plainest widget templates written out in Python.

Django renders every widget and every label through two or three templates (input.html includes
attrs.html); at about 0.35 ms a field, the PBL project editor's two hundred fields took 75 ms of
template work. The templates below are short and fixed, so their output is produced here exactly
as the template would produce it (tests/core/test_form_renderer.py compares the two); any other
template (selects, radio lists, a project's own override) still goes through the template engine.
"""

from collections.abc import Callable

from django.forms.renderers import DjangoTemplates
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

# Templates that are exactly `{% include "django/forms/widgets/input.html" %}` in Django 5.2.
INPUT_TYPES = ("checkbox", "color", "date", "datetime", "email", "file", "hidden", "number")
INPUT_TYPES += ("password", "search", "tel", "text", "time", "url", "input")


def formatted(value) -> str:
    """`{{ value|stringformat:'s' }}` under autoescaping: safe text stays as it is."""
    return conditional_escape(value if isinstance(value, SafeString) else str(value))


def attrs_html(attrs: dict) -> str:
    """django/forms/widgets/attrs.html (and django/forms/attrs.html, which is the same loop)."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        name = conditional_escape(name)
        parts.append(f" {name}" if value is True else f' {name}="{formatted(value)}"')
    return "".join(parts)


def input_html(context: dict) -> str:
    widget = context["widget"]
    value = "" if widget["value"] is None else f' value="{formatted(widget["value"])}"'
    name = conditional_escape(widget["name"])
    return f'<input type="{conditional_escape(widget["type"])}" name="{name}"{value}{attrs_html(widget["attrs"])}>'


def textarea_html(context: dict) -> str:
    widget = context["widget"]
    text = conditional_escape(widget["value"]) if widget["value"] else ""
    return f'<textarea name="{conditional_escape(widget["name"])}"{attrs_html(widget["attrs"])}>\n{text}</textarea>'


def label_html(context: dict) -> str:
    label = conditional_escape(context["label"])
    if not context["use_tag"]:
        return label
    tag = conditional_escape(context["tag"])
    return f"<{tag}{attrs_html(context['attrs'])}>{label}</{tag}>"


WRITTEN_OUT: dict[str, Callable[[dict], str]] = {
    **{f"django/forms/widgets/{kind}.html": input_html for kind in INPUT_TYPES},
    "django/forms/widgets/textarea.html": textarea_html,
    "django/forms/label.html": label_html,
}


class FastWidgetRenderer(DjangoTemplates):
    """settings.FORM_RENDERER: the templates in WRITTEN_OUT in Python, the rest as Django does."""

    def render(self, template_name: str, context: dict, request=None) -> str:
        write = WRITTEN_OUT.get(template_name)
        if write is None:
            return super().render(template_name, context, request)
        return mark_safe(write(context).strip())  # noqa: S308  (every part above is escaped)
