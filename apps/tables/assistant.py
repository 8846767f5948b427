"""The table assistant, after TableLLM: document tables get text answers from the table
as markdown; spreadsheet operations get pandas code, run in the sandbox. Code candidates are sampled
one after another on the same prompt (the model server reads it once), each is run, and
the answer is chosen by checks a machine can verify (see selection.py). A run that ends
without a useful answer makes the job `failed`, with a kind the page says in words."""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.inference.backends import GenerationParams, InferenceError
from apps.inference.models import Generation
from apps.inference.registry import model_for_role
from apps.jobs.models import Job
from apps.jobs.services import JobFailed, create_job
from apps.tables import charts, services, workbooks
from apps.tables.models import Sheet, TableMessage, Workbook
from apps.tables.prompts import (
    CODE_STOP,
    code_messages,
    code_prompt,
    extract_code,
    repair_prompt,
    table_markdown,
    text_prompt,
)
from apps.tables.sandbox import SandboxResult, run_code, table_from_json, table_to_json
from apps.tables.selection import (
    Candidate,
    Choice,
    added_column,
    canonical,
    choose,
    edited_sheet,
    expected_kind,
    rebuilds_data,
    result_kind,
    same_table,
    text_agrees,
)

__all__ = ["code_prompt", "extract_code", "table_markdown", "text_prompt"]

CHART_WORDS = re.compile(r"\b(plot|chart|graph|draw|visuali[sz]e|histogram|pie)\b|图", re.IGNORECASE)
OPERATION_WORDS = re.compile(
    r"\b(add|append|insert|remove|delete|drop|rename|sort|order|replace|fill|update|change|set|convert|create|"
    r"make|round|capitali[sz]e|lowercase|uppercase|split|combine|deduplicate|normali[sz]e|keep only|merge|join|"
    r"increase|decrease|raise|reduce|multiply|divide|double|halve|subtract|trim|strip|swap|move|correct|clean)\b"
    r"|添加|删除|排序|替换|修改|更新|新增|插入|合并|增加|减少|提高|降低",
    re.IGNORECASE,
)
MODES = ("auto", "text", "code", "both")
CHART_KINDS = charts.KINDS
MAX_QUESTION_CHARS = 2000
MAX_OTHER_SHEETS = 4
MAX_CODE_CHARS = 20_000
CODE_TOKENS = 256
TEXT_TOKENS = 120
# 0.7 gave samples that ignored the prompt (typed the table in, read a file) in about a third
# of the draws; they cost a further sample and often the text answer.
SAMPLE_TEMPERATURE = 0.5
# A sampled candidate that runs past this is rambling (typing out the rows, say); the greedy
# one keeps CODE_TOKENS. Code answers to the bench's questions are 10-80 tokens.
SAMPLE_TOKENS = 160
# Within that, a sample may be a few times as long as the greedy answer to the same prompt, and
# at least SAMPLE_FLOOR tokens: on a busy shared server a token cost about a second, and a
# sample that typed out the table (160 tokens, discarded as a rebuilt table) for a one-line sum
# cost minutes.
SAMPLE_FLOOR = 48
CHARS_PER_TOKEN = 3  # pandas code, roughly, in the assistant model's tokenizer
# A sample that starts by reading a file ("df = pd.read_csv('data.csv')") goes on: extract_code
# drops that line. Stopping it there left "df =" and no answer.
SAMPLE_STOP = CODE_STOP

# Sandbox failure kinds as the API names them, and in words for the page.
FAILURE_KINDS = {"refused": "refused", "syntax": "syntax", "error": "runtime", "killed": "runtime"}
FAILURE_WORDS = {
    "refused": "Refused: the code tried something the sandbox does not allow (files, network, "
    "or imports beyond pandas and numpy).",
    "syntax": "The code is not valid Python (a syntax error).",
    "runtime": "The code stopped with an error while running.",
    "timeout": "The code ran for too long and was stopped.",
    "memory": "The code needed more memory than allowed and was stopped.",
    "model": "The model server could not be reached or answered with an error.",
}


def failure_kind(sandbox_kind: str) -> str:
    return FAILURE_KINDS.get(sandbox_kind, sandbox_kind or "runtime")


def candidate_count() -> int:
    return settings.TABLES_CANDIDATES


def decide_mode(workbook: Workbook, question: str, requested: str = "auto") -> str:
    """The stored mode: chart, text, code or both. An explicit mode wins over the guess."""
    if requested not in MODES:
        raise ValidationError(f"mode must be one of {', '.join(MODES)}.")
    if requested != "auto":
        return requested
    if CHART_WORDS.search(question):
        return "chart"
    if workbook.kind == "document":
        return "text"
    return "code" if is_edit(question) else "both"


# ---- requests (web side) ------------------------------------------------------------------


def ask(user, sheet: Sheet, question: str, mode: str = "auto") -> TableMessage:
    """Save the question and queue the answer. Returns the assistant's (pending) message."""
    question = question.strip()
    if not question:
        raise ValidationError("Ask a question or describe a change.")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValidationError(
            f"The question is too long ({len(question)} characters; the limit is {MAX_QUESTION_CHARS})."
        )
    if sheet.current_version is None:
        raise ValidationError("This sheet has no data.")
    workbook = sheet.workbook
    chosen_mode = decide_mode(workbook, question, mode)
    frame = workbooks.load_version(sheet.current_version)
    text_only = chosen_mode == "text"
    others = {} if text_only or chosen_mode == "chart" else other_sheets(sheet)
    messages = text_prompt(frame, question, context_for(sheet)) if text_only else code_messages(frame, question, others)
    model = model_for_role("assistant")
    max_tokens = TEXT_TOKENS if chosen_mode == "text" else CODE_TOKENS
    with transaction.atomic():
        TableMessage.objects.create(
            workbook=workbook, sheet=sheet, role="user", text=question, based_on=sheet.current_version
        )
        job = create_job(user, "tables.ask", {"question": question, "mode": chosen_mode})
        Generation.objects.create(
            job=job,
            model_name=model.name,
            messages=messages,
            params={
                **model.default_params,
                "temperature": 0.0,
                "max_tokens": max_tokens,
                "stop": [] if text_only else CODE_STOP,
                "seed": 0,
                "top_p": 1.0,
            },
        )
        return TableMessage.objects.create(
            workbook=workbook,
            sheet=sheet,
            role="assistant",
            mode=chosen_mode,
            based_on=sheet.current_version,
            job=job,
            result={"question": question, "requested_mode": mode},
        )


def run_code_on_sheet(user, sheet: Sheet, code: str, question: str = "") -> TableMessage:
    """The user's own code, run in the sandbox as a new turn (no model question needed)."""
    if not code.strip():
        raise ValidationError("There is no code to run.")
    if len(code) > MAX_CODE_CHARS:
        raise ValidationError(f"The code is too long ({len(code)} characters; the limit is {MAX_CODE_CHARS}).")
    if sheet.current_version is None:
        raise ValidationError("This sheet has no data.")
    with transaction.atomic():
        job = create_job(user, "tables.run", {})
        return TableMessage.objects.create(
            workbook=sheet.workbook,
            sheet=sheet,
            role="assistant",
            mode="code",
            code=code,
            based_on=sheet.current_version,
            job=job,
            result={"question": question, "edited": True},
        )


def run_edited_code(user, message: TableMessage, code: str) -> TableMessage:
    return run_code_on_sheet(user, message.sheet, code, message.result.get("question", ""))


# ---- answers (worker side) ----------------------------------------------------------------


def answer(job: Job) -> dict:
    """Stream the greedy answer, then sample more candidates on its prompt (see solve); run
    every candidate, choose, repair once if none ran, and fall back to the text answer
    (marked unverified) when the code still fails."""
    from apps.inference.services import load_backend, run_generation

    message = TableMessage.objects.select_related("based_on", "sheet", "workbook").get(job=job)
    frame = workbooks.load_version(message.based_on)
    question = message.result.get("question", "")
    try:
        backend = load_backend(model_for_role("assistant"))
        if message.mode == "chart":
            return render_chart(message, frame, question, backend)
        if message.mode == "text":
            stats = run_generation(job)
            message.text = Generation.objects.get(job=job).output.strip()
            message.save(update_fields=["text"])
            return stats
        return answer_with_code(job, message, frame, question, backend, run_generation)
    except InferenceError as exc:
        fail(message, "model", str(exc))


QUESTION_START = re.compile(
    r"^\s*(what|which|who|whom|how|when|where|why|is|are|was|were|does|do|did|list|show|find|count|give|tell)\b"
    r"|[?？]\s*$|^\s*(哪|谁|多少|什么|列出)",
    re.IGNORECASE,
)


def is_edit(question: str) -> bool:
    """A request to change the table ("add a column...", "delete rows..."), not a question
    that happens to contain such a word ("what was the change in revenue?")."""
    return bool(OPERATION_WORDS.search(question)) and not QUESTION_START.search(question)


@dataclass
class Solution:
    """Everything the code path found for one question; the worker and the bench share it."""

    candidates: list[Candidate]
    choice: Choice
    text: str
    expected: str
    changes_table: bool
    first_failure: dict | None = None

    @property
    def verified(self) -> bool:
        return self.choice.chosen is not None


def _chat(
    backend, messages: list[dict], temperature: float, max_tokens: int, seed: int, stop: list[str] | None = None
) -> str:
    params = GenerationParams(temperature=temperature, max_tokens=max_tokens, top_p=0.95, seed=seed, stop=stop or [])
    return "".join(backend.chat(messages, params))


def greedy_code(backend) -> Callable[[list[dict]], str]:
    """The greedy candidate without streaming (the bench; the worker streams it instead)."""
    return lambda messages: _chat(backend, messages, 0.0, CODE_TOKENS, 0, CODE_STOP)


def sample_budget(greedy_reply: str) -> int:
    """Tokens a sampled candidate may write: twice the greedy answer's length and some, within
    SAMPLE_FLOOR..SAMPLE_TOKENS."""
    return max(SAMPLE_FLOOR, min(SAMPLE_TOKENS, 2 * len(greedy_reply) // CHARS_PER_TOKEN + 16))


def _samples(backend, messages: list[dict], n: int, seed: int, max_tokens: int = SAMPLE_TOKENS) -> list[str]:
    """`n` sampled code answers to the greedy one's exact messages, in one request where the
    backend can (the server reads the prompt once and copies its cache to each answer)."""
    params = GenerationParams(
        temperature=SAMPLE_TEMPERATURE, max_tokens=max_tokens, top_p=0.95, seed=seed, stop=SAMPLE_STOP
    )
    try:
        if hasattr(backend, "chat_choices"):
            return backend.chat_choices(messages, params, n)
        return ["".join(backend.chat(messages, replace(params, seed=seed + i))) for i in range(n)]
    except InferenceError:
        return []  # a lost sample only lowers the vote, the greedy one still counts


def settled(candidates: list[Candidate], expected: str) -> bool:
    """At least two candidates, most of them, ran to the same answer of the kind asked for:
    more samples or a text answer would not change the choice."""
    choice = choose(candidates, expected)
    return choice.chosen is not None and choice.fits and choice.agreeing >= 2 and choice.agreeing * 2 > len(candidates)


def solve(
    frame: pd.DataFrame,
    question: str,
    backend,
    greedy: Callable[[list[dict]], str],
    want_text: str = "unsettled",
    context: str = "",
    candidates_wanted: int | None = None,
    text_fallback: bool = True,
    others: dict[str, pd.DataFrame] | None = None,
) -> Solution:
    """Code candidates one after another on the same messages, so that the model server reads
    the table's prompt once (for the greedy one, through `greedy`, which may stream it) and
    every later candidate reuses it from its cache: sampling several at once took a slot each
    and read the prompt that many times over. One sample follows the greedy candidate; the rest
    come (in one request) only when those two do not agree. If none ran, one repair turn with
    the real error. The text answer (a prompt of its own, with the whole table) is read when
    `want_text` is "always", or, when "unsettled", only if the candidates did not settle the
    answer: then it breaks the tie, or stands in (unverified) when no code ran."""
    changes_table = is_edit(question)
    expected = expected_kind(question, changes_table)
    prompt = code_messages(frame, question, others)
    wanted = candidates_wanted or candidate_count()
    edit = question if changes_table else ""
    first = greedy(prompt)
    budget = sample_budget(first)
    candidates = [evaluate(extract_code(first), frame, False, others, edit)]
    if wanted > 1:
        replies = _samples(backend, prompt, 1, seed=1, max_tokens=budget)
        candidates += [evaluate(extract_code(r), frame, True, others, edit) for r in replies]
        if wanted > 2 and not settled(candidates, expected):
            more = _samples(backend, prompt, wanted - 2, seed=2, max_tokens=budget)
            candidates += [evaluate(extract_code(reply), frame, True, others, edit) for reply in more]
    first_failure = None
    if not any(c.ok for c in candidates):
        broken = next((c for c in candidates if c.kind != "refused"), candidates[0])
        first_failure = {"code": broken.code, "error": broken.error, "kind": failure_kind(broken.kind)}
        if broken.kind != "refused":  # forbidden code is not repaired into allowed code
            fixed = _chat(
                backend,
                repair_prompt(frame, question, broken.code, broken.error, others),
                0.0,
                CODE_TOKENS,
                0,
                CODE_STOP,
            )
            repaired = evaluate(extract_code(fixed), frame, False, others, edit)
            repaired.repaired_from = first_failure
            candidates.append(repaired)
    text = ""
    needs_text = (
        want_text == "always"
        or (want_text == "unsettled" and not settled(candidates, expected))
        or (text_fallback and not any(c.ok for c in candidates))
    )
    if needs_text and not changes_table:
        text = _chat(backend, text_prompt(frame, question, context), 0.0, TEXT_TOKENS, 0).strip()
    choice = choose(candidates, expected, text)
    return Solution(candidates, choice, text, expected, changes_table, first_failure)


def answer_with_code(job: Job, message: TableMessage, frame: pd.DataFrame, question: str, backend, run_generation):
    stats: dict = {}

    def greedy(_prompt: list[dict]) -> str:
        stats.update(run_generation(job))  # streamed to the page; its prompt was saved by ask()
        return Generation.objects.get(job=job).output

    solution = solve(
        frame,
        question,
        backend,
        greedy,
        text_wanted(message),
        context_for(message.sheet),
        text_fallback=message.result.get("requested_mode") != "code",
        others=other_sheets(message.sheet),
    )
    candidates, choice = solution.candidates, solution.choice
    message.text = solution.text
    message.result.update(
        {
            "task": "edit" if solution.changes_table else "query",
            "expected": solution.expected,
            "candidates": [c.summary() for c in candidates],
            "agreeing": choice.agreeing,
            "ran": choice.ran,
            "kind_fits": choice.fits,
            "agreement": choice.text_agrees,
        }
    )
    if solution.first_failure:
        message.result["first_attempt"] = solution.first_failure
    if choice.chosen is not None:
        message.code = choice.chosen.code
        message.result["chosen"] = candidates.index(choice.chosen)
        message.result["verified"] = True
        apply_run(message, choice.chosen)
        message.save()
        return {**stats, "candidates": len(candidates), "agreeing": choice.agreeing}
    # No code ran, even after repair: say so, and give the text answer where one can help.
    last = candidates[-1]
    message.code = last.code
    message.result["run"] = {"ok": False, "kind": failure_kind(last.kind), "stdout": last.stdout}
    if solution.text:
        message.result["verified"] = False
        message.result["code_failure"] = {"kind": failure_kind(last.kind), "error": last.error}
        message.save()
        return {**stats, "candidates": len(candidates), "agreeing": 0, "unverified": True}
    fail(message, failure_kind(last.kind), last.error)


def text_wanted(message: TableMessage) -> str:
    """When the worker reads a text answer beside the code: always when the user chose "both";
    otherwise only to stand in for code that failed (solve's fallback). On spreadsheets the text
    way must compute sums, counts and maxima over every row in its head: with the assistant model
    it was right on 1 of the 13 bench queries where it was read to settle a disagreement, and it
    cost the slowest questions their longest request (the whole table as markdown)."""
    if message.mode == "both" and message.result.get("requested_mode") == "both":
        return "always"
    return "never"


def context_for(sheet: Sheet) -> str:
    """The text around the table: the sheet's own (a DOCX or PDF table), else the workbook's."""
    return sheet.context or sheet.workbook.context


def other_sheets(sheet: Sheet) -> dict[str, pd.DataFrame]:
    """The workbook's other sheets by name (at most a few), for merges and look-ups."""
    siblings = Sheet.objects.filter(workbook=sheet.workbook_id).exclude(pk=sheet.pk).select_related("current_version")
    return {s.name: workbooks.load_version(s.current_version) for s in siblings[:MAX_OTHER_SHEETS] if s.current_version}


def evaluate(
    code: str,
    frame: pd.DataFrame,
    sampled: bool,
    others: dict[str, pd.DataFrame] | None = None,
    edit: str = "",
) -> Candidate:
    """Run one candidate. `edit`: the request, when it asks to change the sheet; then a lone
    changed column is read as the edited sheet, and a sheet handed back unchanged does not
    count as an edit (see selection.edited_sheet, same_table)."""
    if rebuilds_data(code):
        error = "The code builds its own sample table instead of using `df`, the loaded sheet."
        return Candidate(code=code, sampled=sampled, ok=False, kind="error", error=error)
    run = run_code(code, {"df": frame, **(others or {})})
    candidate = Candidate(code=code, sampled=sampled, ok=run.ok, kind=run.kind, error=run.error, stdout=run.stdout)
    if run.ok:
        new_table = changed_table(run)
        if not edit and run.new_df is not None:
            # A question's code that adds a scratch column to df and answers with something else
            # (`df['mean'] = ...; result = df.loc[..., 'class']`): the answer is that, and the
            # sheet stays as it was (it once became a version "added column mean").
            new_table = None
        candidate.output = run.result
        candidate.new_table = new_table
        candidate.result_kind = "table" if new_table is not None else result_kind(run.result)
        if edit and new_table is None and run.result.get("type") == "table":
            returned = table_from_json(run.result["table"])
            edited = edited_sheet(frame, returned, edit)
            if edited is None:
                edited = added_column(frame, returned, edit)
            if edited is not None:
                new_table = candidate.new_table = table_to_json(edited)
                candidate.result_kind = "table"
            elif same_table(frame, returned):
                candidate.result_kind = "unchanged"  # fits no question: it changed nothing
        candidate.key = canonical(run.result, new_table)
    return candidate


def fail(message: TableMessage, kind: str, error: str) -> None:
    """Record the failure on the message and end the job as `failed` with its kind."""
    words = FAILURE_WORDS.get(kind, FAILURE_WORDS["runtime"])
    message.error = error
    message.result["failure"] = {"kind": kind, "words": words}
    message.result.setdefault("run", {"ok": False, "kind": kind, "stdout": ""})
    message.save()
    raise JobFailed(f"{words} {error}".strip(), result={"ok": False, "kind": kind, "message_id": message.pk})


def run_message_code(job: Job) -> dict:
    """A user's own code (an edited answer, or code sent to the API)."""
    message = TableMessage.objects.select_related("based_on", "sheet").get(job=job)
    frame = workbooks.load_version(message.based_on)
    run = run_code(message.code, {"df": frame})
    if not run.ok:
        message.result["run"] = {"ok": False, "kind": failure_kind(run.kind), "stdout": run.stdout}
        fail(message, failure_kind(run.kind), run.error)
    candidate = evaluate_result(message.code, run)
    apply_run(message, candidate)
    message.save()
    return {"ok": True, "output": message.result["output"].get("type")}


def changed_table(run: SandboxResult) -> str | None:
    """The edited `df` as table JSON, or None when the code left it alone. When the code
    set `result = df` the sandbox sends the table once, as the result."""
    if not run.df_changed:
        return None
    if run.new_df is not None:
        return run.new_df["table"]
    return run.result.get("table")


def evaluate_result(code: str, run: SandboxResult) -> Candidate:
    return Candidate(
        code=code, sampled=False, ok=True, output=run.result, stdout=run.stdout, new_table=changed_table(run)
    )


def apply_run(message: TableMessage, chosen: Candidate) -> None:
    """The chosen run's answer on the message; a changed table becomes a new version,
    named after what changed."""
    message.error = ""
    message.result["run"] = {"ok": True, "kind": "", "stdout": chosen.stdout}
    table = chosen.new_table
    old = workbooks.load_version(message.based_on)
    # `result = df.sort_values(...)` for "sort the rows" is the new table; a computed column
    # alone (`result = df.revenue / df.units` for "add a column") is not, and must not replace
    # the sheet: it stays an answer.
    if (
        table is None
        and message.result.get("task") == "edit"
        and chosen.output.get("type") == "table"
        and is_whole_table(old, table_from_json(chosen.output["table"]))
    ):
        table = chosen.output["table"]
    changed = table_from_json(table) if table is not None else None
    if changed is not None and same_table(old, changed):
        changed = None  # nothing changed: no new version named "no change"
    if changed is not None:
        version = services.save_version(
            message.sheet, changed, workbooks.describe_change(old, changed), parent=message.based_on
        )
        message.made_version = version
        message.result["output"] = {"type": "version", "number": version.number, "description": version.description}
    else:
        message.result["output"] = chosen.output


def is_whole_table(old: pd.DataFrame, result: pd.DataFrame) -> bool:
    """Whether a result can stand for the edited sheet: it keeps every column (sorted,
    filtered, a column added) or is a selection of at least two of the sheet's columns."""
    before, after = {str(c) for c in old.columns}, {str(c) for c in result.columns}
    return before <= after or (len(after) >= 2 and after <= before)


# ---- charts ---------------------------------------------------------------------------------


def render_chart(message: TableMessage, frame: pd.DataFrame, question: str, backend) -> dict:
    """The model fills a constrained spec (kind, x, y, aggregation, sort); words in the request
    correct it; the data is aggregated here and the chart is drawn from that table."""
    spec = backend.generate_json(
        charts.spec_prompt(frame, question),
        schema=charts.spec_schema(frame),
        params=GenerationParams(temperature=0, max_tokens=80),
    )
    spec = charts.refine_spec(spec, frame, question)
    data = charts.aggregate(frame, spec)
    message.result["output"] = {"type": "chart", "spec": spec, "table": table_to_json(data)}
    message.result["chart_svg"] = charts.draw(data, spec)
    message.text = charts.describe(spec)
    message.save()
    return {"chart": spec}


def draw_chart(frame: pd.DataFrame, spec: dict, image_format: str = "svg") -> str | bytes:
    return charts.draw(charts.aggregate(frame, dict(spec)), spec, image_format)


def answers_agree(code_result: dict, text: str) -> bool | None:
    """Whether the code's answer appears in the text answer. None when not comparable."""
    if code_result.get("type") != "value":
        return None
    return text_agrees(canonical(code_result), text)


# ---- merge -----------------------------------------------------------------------------------


def propose_merge_keys(left: pd.DataFrame, right: pd.DataFrame) -> list[dict]:
    """Candidate join keys, best first: shared columns whose values overlap, favouring unique ones."""
    candidates = []
    for column in [c for c in left.columns if c in right.columns]:
        left_values, right_values = set(left[column].dropna().astype(str)), set(right[column].dropna().astype(str))
        if not left_values or not right_values:
            continue
        overlap = len(left_values & right_values) / min(len(left_values), len(right_values))
        uniqueness = right[column].nunique() / max(1, len(right[column].dropna()))
        candidates.append(
            {
                "key": str(column),
                "overlap": round(overlap, 3),
                "uniqueness": round(uniqueness, 3),
                "score": round(overlap * (0.5 + 0.5 * uniqueness), 3),
            }
        )
    return sorted(candidates, key=lambda c: -c["score"])


def merge_sheets(left_sheet: Sheet, right_sheet: Sheet, key: str, how: str = "left"):
    if how not in ("left", "inner", "outer"):
        raise ValidationError("how must be left, inner or outer")
    left = workbooks.load_version(left_sheet.current_version)
    right = workbooks.load_version(right_sheet.current_version)
    if key not in left.columns or key not in right.columns:
        raise ValidationError(f"Both sheets need the column {key!r}.")
    merged = left.merge(right, on=key, how=how, suffixes=("", f"_{right_sheet.name}"))
    return services.save_version(left_sheet, merged, f"Merged with {right_sheet.name} on {key} ({how})")
