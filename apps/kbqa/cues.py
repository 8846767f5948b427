"""What a question's own words say, whatever the KB: years and the comparison around them
("before 1980", "in 1999", "after 2005"), numbers written with a scale ("2 million"), and the
type of answer it asks for (yes/no, a number, a date, a set of names). The parser uses these to
fill year, date and number arguments and to rank programs whose answer has the wrong type lower.
"""

from __future__ import annotations

import re

YEAR = re.compile(r"(?<![\w.,])(1[0-9]{3}|20[0-9]{2})(?![\w.,]\d)")
SCALED = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*(thousand|million|billion|trillion)\b", re.IGNORECASE)
SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
BEFORE = ("before", "earlier than", "prior to", "until", "older than")
AFTER = ("after", "later than", "since", "younger than", "newer than")
YES_NO = re.compile(r"^\s*(is|are|was|were|does|do|did|has|have|had|can)\b", re.IGNORECASE)
HOW_MANY = re.compile(r"\b(how many|number of|count)\b", re.IGNORECASE)
WHEN = re.compile(
    r"^\s*(when\b|in which year|in what year|what year|which year|on which date|what date)", re.IGNORECASE
)
HOW_MUCH = re.compile(
    r"^\s*(how (much|far|long|tall|big|large|high|old|heavy)|what is the (size|distance))", re.IGNORECASE
)


def years_in(text: str) -> list[int]:
    return [int(m.group(1)) for m in YEAR.finditer(text)]


def year_op(text: str, year: int) -> str:
    """The comparison a year is asked with: the words just before it decide."""
    lowered = text.casefold()
    at = lowered.find(str(year))
    before = lowered[max(0, at - 25) : at] if at >= 0 else lowered
    if any(re.search(rf"\b{cue}\s*$", before) for cue in BEFORE):
        return "<"
    if any(re.search(rf"\b{cue}\s*$", before) for cue in AFTER):
        return ">"
    return "="


def scaled_numbers(text: str) -> list[tuple[str, float]]:
    """("2 million", 2000000.0) for numbers written with a scale word."""
    return [
        (m.group(0), float(m.group(1).replace(",", "")) * SCALES[m.group(2).casefold()]) for m in SCALED.finditer(text)
    ]


def expected_answer(question: str) -> str | None:
    """The answer type the question asks for: verdict, count, time, quantity or None (names)."""
    if YES_NO.search(question) and " or " not in question.casefold():
        return "verdict"
    if HOW_MANY.search(question):
        return "count"
    if WHEN.search(question):
        return "time"
    if HOW_MUCH.search(question):
        return "quantity"
    return None


def answer_fits(expected: str | None, kind: str, result) -> bool:
    """Whether a program's final result has the type the question asks for."""
    if expected is None:
        return kind in ("entities", "names", "name", "values")
    if expected == "verdict":
        return kind == "verdict"
    if expected == "count":
        return kind == "count" or (kind == "values" and any(v.type == "quantity" for v in result or []))
    if expected == "time":
        return kind == "values" and bool(result) and all(v.type in ("date", "year") for v in result)
    if expected == "quantity":
        return kind == "values" and bool(result) and all(v.type == "quantity" for v in result)
    return True
