"""Choosing among code candidates by checks a machine can verify (the RewardAgent idea
from TableLLM's papers, without a learned reward): the code runs, its result is the kind
of value the question asks for, other candidates reach the same result, and the text
answer agrees. No check reads the model's prose about itself."""

import json
import math
import re
from dataclasses import dataclass, field

import pandas as pd

from apps.tables.sandbox import table_from_json

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# "How many ...": a number, whatever else the question says.
HOW_MANY = re.compile(r"\b(how many|how much|number of|count of)\b|多少|几", re.IGNORECASE)
COUNT_WORDS = re.compile(
    r"\b(count|total|sum|average|mean|median|max(imum)?|min(imum)?|highest|lowest|largest|smallest|"
    r"percent(age)?|ratio|difference|std|variance)\b|总|平均|数量",
    re.IGNORECASE,
)
# A question that starts by asking for a who or a which ("Which region has the highest total
# revenue?", "On which date ...") wants a name even when it also says "total" or "average".
NAME_WORDS = re.compile(
    r"^\s*((on|in|at|for|from|by|of) )?(which|who|whom|whose)\b"
    r"|^\s*(what is the name|name the|what \w+ (has|had|is|was))\b|哪|谁",
    re.IGNORECASE,
)
LIST_WORDS = re.compile(r"\b(list|all the|show (me )?(the )?rows|top \d+|every)\b|列出", re.IGNORECASE)


def expected_kind(question: str, changes_table: bool) -> str:
    """What a right answer looks like: 'table' for an edit, else 'list', 'number', 'name' or 'any'.
    A "which" question is a name: a tie or a plural ("which items ...") comes back as a list,
    which a name check accepts."""
    if changes_table:
        return "table"
    if HOW_MANY.search(question):
        return "number"
    if LIST_WORDS.search(question):
        return "list"
    if NAME_WORDS.search(question):
        return "name"
    if COUNT_WORDS.search(question):
        return "number"
    return "any"


def result_kind(output: dict) -> str:
    """The kind of what a run returned: number, name, list, table, version, or none."""
    kind = output.get("type")
    if kind == "version":
        return "table"
    if kind == "table":
        frame = table_from_json(output["table"])
        if frame.shape == (1, 1):
            return _value_kind(frame.iat[0, 0])
        return "list" if frame.shape[1] <= 2 else "table"
    return _value_kind(output.get("value"))


def _value_kind(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, bool):
        return "name"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | dict):
        if len(value) != 1:
            return "list"
        return _value_kind(next(iter(value.values() if isinstance(value, dict) else value)))
    if isinstance(value, str):
        try:
            float(value.replace(",", ""))
        except ValueError:
            return "name"
        return "number"
    return "name"


def kind_fits(expected: str, actual: str) -> bool:
    if actual == "none":
        return False
    if expected == "any":
        return True
    if expected == "list":
        return actual in ("list", "table", "name")  # a one-item list may come back as a name
    if expected == "table":
        # An edit: the run changed df (or returned a whole table); a computed column alone
        # answers "what would it be", not the change.
        return actual == "table"
    if expected == "name":
        return actual in ("name", "list")  # "who ...?" may have a tie: a list of names
    return actual == expected


def _round(value: float) -> float:
    return float(f"{value:.4g}") if math.isfinite(value) else value


def _canonical_value(value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return _round(float(value))
    if isinstance(value, str):
        try:
            return _round(float(value.replace(",", "")))
        except ValueError:
            return value.strip().lower()
    if isinstance(value, dict):
        return tuple(sorted((str(k), _canonical_value(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        items = [_canonical_value(v) for v in value]
        if len(items) == 1:
            return items[0]
        try:
            return tuple(sorted(items, key=repr))  # order rarely matters for "which ..." answers
        except TypeError:
            return tuple(repr(i) for i in items)
    return repr(value)


def _canonical_frame(frame: pd.DataFrame):
    if frame.shape == (1, 1):
        return _canonical_value(_plain(frame.iat[0, 0]))
    if frame.shape[1] == 1 or (frame.shape[1] == 2 and not frame.index.equals(pd.RangeIndex(len(frame)))):
        return _canonical_value([_plain(v) for v in frame.iloc[:, -1]])
    rows = [tuple(_canonical_value(_plain(v)) for v in row) for row in frame.itertuples(index=False)]
    return ("table", tuple(str(c) for c in frame.columns), tuple(rows))


def _plain(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def canonical(output: dict, new_table: str | None = None):
    """A hashable form of a result, so that two candidates that reach the same answer
    by different code count as agreeing (4.0 == 4, ' North' == 'north', list order)."""
    if new_table is not None:
        return _canonical_frame(table_from_json(new_table))
    if output.get("type") == "table":
        return _canonical_frame(table_from_json(output["table"]))
    return _canonical_value(output.get("value"))


def text_agrees(key, text: str) -> bool | None:
    """Whether a text answer states the code's answer. None when they cannot be compared."""
    if not text or key is None:
        return None
    if isinstance(key, float):
        numbers = [float(n.replace(",", "")) for n in NUMBER.findall(text)]
        return any(math.isclose(n, key, rel_tol=2e-3, abs_tol=1e-6) for n in numbers)
    if isinstance(key, str):
        return key in text.lower()
    if isinstance(key, tuple) and key and key[0] != "table" and len(key) <= 10:
        return all(text_agrees(item, text) for item in key)
    return None


# Requests whose lone same-named column is not a change of that column in place: a new column,
# or a reordering (the sorted values of one column, out of line with the other columns' rows).
NOT_IN_PLACE = re.compile(
    r"\b(new column|add|append|insert|create|sort|order|rank)\b|新增|添加|插入|排序", re.IGNORECASE
)


def edited_sheet(frame: pd.DataFrame, result: pd.DataFrame, question: str) -> pd.DataFrame | None:
    """An in-place edit returned as the changed column alone (`result = df['revenue'].fillna(0)`
    for "fill the missing revenue values with 0"), read as the sheet with that column replaced.
    Only when the column is one of the sheet's, named in the request, every row is there, and
    the request asks for no new column (then the same-named series is the new column's values,
    not a change to the old one) and no sorting (then its rows no longer line up)."""
    if result.shape[1] != 1 or len(result) != len(frame) or NOT_IN_PLACE.search(question):
        return None
    name = str(result.columns[0])
    columns = {str(c): c for c in frame.columns}
    if name not in columns or not re.search(rf"(?<!\w){re.escape(name)}(?!\w)", question, re.IGNORECASE):
        return None
    edited = frame.copy()
    edited[columns[name]] = result.iloc[:, 0].to_numpy()
    return edited


NEW_COLUMN = re.compile(
    r"(?:\bnew\s+column|\b(?:add|create|insert|append)\b.*?\bcolumn)\s+(?:named\s+|called\s+)?[`'\"]?([^\W\d]\w*)"
    # "添加一列 总分，等于…" / "新增一列名为 总分": the name follows "a column" up to the next comma
    r"|(?:添加|新增|插入|增加)一?列\s*(?:名为|叫做?)?\s*[`'\"“]?([^\W\d][^\s，,。：:=`'\"”]*)",
    re.IGNORECASE,
)
# Words that follow "add a column" without naming it ("add a column with the revenue per unit").
NOT_A_NAME = {"with", "for", "that", "which", "of", "to", "equal", "showing", "containing", "where", "from", "as"}


def added_column(frame: pd.DataFrame, result: pd.DataFrame, question: str) -> pd.DataFrame | None:
    """ "Add a column monthly_salary equal to salary divided by 12" answered with the values
    alone (`result = df['salary'] / 12`, a series named after salary or not at all), read as the
    sheet with that column added under the name the request gives. Only for a name the request
    spells out that the sheet does not have yet, and a value for every row."""
    if result.shape[1] != 1 or len(result) != len(frame):
        return None
    match = NEW_COLUMN.search(question)
    name = match and (match.group(1) or match.group(2))
    if not name or name.lower() in NOT_A_NAME or name in {str(c) for c in frame.columns}:
        return None
    return frame.assign(**{name: result.iloc[:, 0].to_numpy()})


def same_table(frame: pd.DataFrame, result: pd.DataFrame) -> bool:
    """Whether a result is the sheet as it was: an edit that changed nothing (chained
    `df['x'].fillna(0, inplace=True)` is a no-op under copy-on-write, then `result = df`)."""
    if [str(c) for c in frame.columns] != [str(c) for c in result.columns] or len(frame) != len(result):
        return False
    return frame.reset_index(drop=True).astype(str).equals(result.reset_index(drop=True).astype(str))


REBUILT = re.compile(r"^\s*df\s*=\s*pd\.DataFrame\(\s*[\[{]", re.MULTILINE)


def rebuilds_data(code: str) -> bool:
    """Code that types in a sample table ("df = pd.DataFrame({...})") answers on the few rows
    it was shown, not on the sheet: it does not count as a candidate that ran."""
    return bool(REBUILT.search(code))


@dataclass
class Candidate:
    code: str
    sampled: bool  # False for the greedy (temperature 0) candidate
    ok: bool = False
    kind: str = ""  # the sandbox's failure kind, when not ok
    error: str = ""
    output: dict = field(default_factory=dict)
    stdout: str = ""
    new_table: str | None = None  # the changed df, as table JSON, when the code edited it
    result_kind: str = ""
    key: object = None
    repaired_from: dict | None = None

    def summary(self) -> dict:
        """What the page and the API show of a candidate."""
        return {
            "code": self.code,
            "ok": self.ok,
            "kind": self.kind,
            "error": self.error,
            "result_kind": self.result_kind,
            "answer": preview(self.output) if self.ok else None,
            "stdout": self.stdout,
            "repaired_from": self.repaired_from,
        }


def preview(output: dict) -> str:
    if output.get("type") == "table":
        frame = table_from_json(output["table"])
        if frame.shape == (1, 1):
            return str(_plain(frame.iat[0, 0]))
        return f"a table of {len(frame)} rows × {frame.shape[1]} columns"
    return json.dumps(output.get("value"), ensure_ascii=False, default=str)[:300]


@dataclass
class Choice:
    chosen: Candidate | None
    agreeing: int  # candidates (the chosen one included) with the same result
    ran: int  # candidates that ran without error
    fits: bool  # the chosen result is the kind of value the question asks for
    text_agrees: bool | None


def choose(candidates: list[Candidate], expected: str, text: str = "") -> Choice:
    """The result with the most support: candidates that ran are grouped by their canonical
    result; a group scores by how many agree, whether its kind fits the question, and
    whether the text answer states it. Ties go to the group with the greedy candidate."""
    ran = [c for c in candidates if c.ok]
    if not ran:
        return Choice(None, 0, 0, False, None)
    groups: dict[str, list[Candidate]] = {}
    for candidate in ran:
        groups.setdefault(repr(candidate.key), []).append(candidate)

    def score(members: list[Candidate]) -> tuple:
        first = members[0]
        fits = kind_fits(expected, first.result_kind)
        agrees = text_agrees(first.key, text) if expected != "table" else None
        return (fits, len(members) + (1.5 if agrees else 0), any(not m.sampled for m in members))

    best = max(groups.values(), key=score)
    chosen = next((m for m in best if not m.sampled), best[0])
    return Choice(
        chosen,
        len(best),
        len(ran),
        kind_fits(expected, chosen.result_kind),
        text_agrees(chosen.key, text) if text and expected != "table" else None,
    )
