"""Progress messages in the reader's language.

Workers save a job's progress message in English: the API, the admin and the logs read it as it
is, and a worker does not know who will read it. Pages show it in the reader's language: a worker
builds each message from a template registered here (`message(TEMPLATE, **values)`), and
`localize` finds the template a saved message was made from and fills its translation with the
same values. Values that are messages themselves (a stage's message inside the chain's "… · about
N min left") are translated too. A message made from no template is shown as it is.
"""

import re

from django.utils.translation import gettext

_FIELD = re.compile(r"\\\{(\w+)\\\}")  # a "{name}" field, as re.escape writes it
_TEMPLATES: dict[str, re.Pattern] = {}
_WRAPPERS: set[str] = set()


def template(text: str, wraps: bool = False) -> str:
    """Register a template ("{name}" fields; mark `text` with gettext_noop where it is written,
    so makemessages finds it) and return it. `wraps`: a field holds another message; such
    templates are tried first, since the inner template's last field would swallow the rest."""
    if text not in _TEMPLATES:
        pattern = _FIELD.sub(lambda m: f"(?P<{m.group(1)}>.*?)", re.escape(text))
        _TEMPLATES[text] = re.compile(f"^{pattern}$", re.DOTALL)
    if wraps:
        _WRAPPERS.add(text)
    return text


def message(text: str, **values) -> str:
    """The English message a worker saves: a registered template filled with `values`."""
    if text not in _TEMPLATES:
        raise KeyError(f"progress template not registered: {text!r}")
    return text.format(**values)


def made_from(text: str, saved: str) -> bool:
    """Whether the saved message `saved` was made from the template `text`."""
    return _TEMPLATES[text].match(saved) is not None


def localize(saved: str) -> str:
    """`saved` in the active language, where it was made from a registered template."""
    if not saved:
        return saved
    for text, pattern in sorted(_TEMPLATES.items(), key=lambda item: item[0] not in _WRAPPERS):
        found = pattern.match(saved)
        if found:
            values = {name: localize(value) for name, value in found.groupdict().items()}
            try:
                return gettext(text).format(**values)
            except (KeyError, IndexError, ValueError):  # a translation with other fields
                return saved
    return saved
