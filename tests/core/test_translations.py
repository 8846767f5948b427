"""The Chinese catalogue covers every string the code marks for translation: a page in Chinese
with an English sentence in the middle (the queue wait "· about 3 min", the landing page) came
from strings added to the code and never to locale/, which no page test looked for."""

import ast
import gettext
import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.mo"
MARKERS = {"_", "gettext", "gettext_lazy", "gettext_noop"}
CONTEXT_MARKERS = {"pgettext", "pgettext_lazy"}
# {% translate "text" %}, optionally with `context "..."`: the literal is the msgid.
TEMPLATE_LITERAL = re.compile(r"""\{%\s*trans(?:late)?\s+(?:"([^"]*)"|'([^']*)')(?:[^%]*?context\s+"([^"]*)")?""")
# Strings that read the same in Chinese (a parameter's name, the switcher's own language name).
SAME_IN_CHINESE = {"Top p", "English", "Top k"}


def python_msgids() -> set[tuple[str | None, str]]:
    """(context, msgid) of every gettext call with literal arguments under apps/."""
    found = set()
    for path in (ROOT / "apps").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            first = node.args[0]
            literal = [a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if name in MARKERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add((None, first.value))
            elif name in CONTEXT_MARKERS and len(literal) == 2:
                found.add((literal[0], literal[1]))
    return found


def template_msgids() -> set[tuple[str | None, str]]:
    """(context, msgid) of every {% translate "literal" %}; makemessages writes a template's % as %%."""
    found = set()
    for folder in (ROOT / "templates", ROOT / "apps"):
        for path in folder.rglob("*.html"):
            for double, single, context in TEMPLATE_LITERAL.findall(path.read_text(encoding="utf-8")):
                found.add((context or None, (double or single).replace("%", "%%")))
    return found


def test_every_marked_string_has_a_chinese_translation():
    with CATALOGUE.open("rb") as handle:
        chinese = gettext.GNUTranslations(handle)
    msgids = python_msgids() | template_msgids()
    assert len(msgids) > 500  # the scan finds the code's strings at all
    missing = sorted(
        msgid
        for context, msgid in msgids
        if msgid not in SAME_IN_CHINESE
        and (chinese.pgettext(context, msgid) if context else chinese.gettext(msgid)) == msgid
    )
    assert not missing, (
        f"{len(missing)} strings have no Chinese in locale/ (run makemessages, translate): {missing[:20]}"
    )
