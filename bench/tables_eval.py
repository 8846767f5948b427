"""Tables benchmark: the questions in bench/tables_cases.py (every TableLLM task type over the
tables built there), gold answers computed from the tables.

--via api (the default) measures what a user gets: bench/tables_api.py starts the web process and a
Celery worker (stopped at the end) against DATABASE_URL / REDIS_URL and the assistant model server
(OPENAI_BASE_URL or the project's llama server setting), uploads each table with an API token, asks
with the mode (--mode, default auto), polls GET /api/jobs/{id} until the job ends and scores the answer
the API returns; seconds are end to end (request to the job's end). --via process calls
apps.tables.assistant.solve in this process (no web, queue or worker) and records llama.cpp's
timings per question.

Prints accuracy per task type and per mode, single sample (the greedy candidate alone) against
selected, median/p95 seconds per question, and the load average (the machine is shared).
Run: .venv/bin/python bench/tables_eval.py [--via api|process] [--limit N] [--task query] [--mode auto]"""

import argparse
import json
import math
import os
import re
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

import pandas as pd  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.inference.backends import GenerationParams  # noqa: E402
from apps.inference.registry import model_for_role  # noqa: E402
from apps.inference.services import load_backend  # noqa: E402
from apps.tables import assistant, charts  # noqa: E402
from apps.tables.prompts import text_prompt  # noqa: E402
from apps.tables.sandbox import table_from_json  # noqa: E402
from apps.tables.selection import _canonical_value, canonical, choose, expected_kind  # noqa: E402
from bench.tables_cases import CASES, DOCUMENT_TABLES, build_tables  # noqa: E402

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def plain(value):
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=2e-3, abs_tol=0.006)


def key_matches(gold, key) -> bool:
    """A candidate's canonical result against the gold answer."""
    want = _canonical_value(plain(gold))
    if isinstance(want, float) and isinstance(key, float):
        return close(want, key)
    if isinstance(want, tuple) and isinstance(key, tuple) and len(want) == len(key):
        return all(key_matches(w, k) for w, k in zip(want, key, strict=True))
    return want == key


def text_matches(gold, text: str) -> bool:
    """A text answer states the gold: the number, the name, or every item of a list."""
    gold = plain(gold)
    if isinstance(gold, list):
        return bool(gold) and all(text_matches(item, text) for item in gold)
    if isinstance(gold, int | float) and not isinstance(gold, bool):
        numbers = [float(n.replace(",", "")) for n in NUMBER.findall(text)]
        return any(close(n, float(gold)) for n in numbers)
    return re.search(rf"(?<!\w){re.escape(str(gold).lower())}(?!\w)", text.lower()) is not None


def by_all_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), key=lambda s: s.astype(str), kind="stable").reset_index(drop=True)


def table_matches(expected: pd.DataFrame, got: pd.DataFrame | None, sort_key: str = "") -> bool:
    """Same rows in the same order, and every expected column with the expected values. For a
    sort (`sort_key`), rows tied on the key may come in any order: the key column must be in the
    expected order and the rows the expected ones."""
    if got is None or len(got) != len(expected):
        return False
    if sort_key:
        got = got.reset_index(drop=True)
        got.columns = [str(c) for c in got.columns]
        if sort_key not in got.columns or not table_matches(expected[[sort_key]], got[[sort_key]]):
            return False
        if set(map(str, expected.columns)) - set(got.columns):
            return False
        return table_matches(by_all_columns(expected), by_all_columns(got[[str(c) for c in expected.columns]]))
    got = got.reset_index(drop=True)
    got.columns = [str(c) for c in got.columns]
    for column in expected.columns:
        if str(column) not in got.columns:
            return False
        for want, have in zip(expected[column], got[str(column)], strict=True):
            want, have = plain(want), plain(have)
            if pd.isna(want) if not isinstance(want, str) else False:
                if not (have is None or (not isinstance(have, str) and pd.isna(have))):
                    return False
            elif isinstance(want, int | float) and not isinstance(want, bool):
                try:
                    if not close(float(want), float(have)):
                        return False
                except (TypeError, ValueError):
                    return False
            elif str(want).strip().lower() != str(have).strip().lower():
                return False
    return True


def candidate_table(candidate) -> pd.DataFrame | None:
    if candidate is None or not candidate.ok:
        return None
    if candidate.new_table is not None:
        return table_from_json(candidate.new_table)
    if candidate.output.get("type") == "table":
        return table_from_json(candidate.output["table"])
    return None


def chart_right(frame: pd.DataFrame, gold: tuple, spec: dict, data: pd.DataFrame) -> bool:
    x, y, aggregation = gold
    if spec["x"] != x or (aggregation != "count" and (spec["y"] != y or spec.get("aggregation") != aggregation)):
        return False
    want = frame.groupby(x).size() if aggregation == "count" else frame.groupby(x)[y].agg(aggregation)
    got = dict(zip(data.iloc[:, 0], data.iloc[:, 1], strict=True))
    return len(got) == len(want) and all(close(float(got.get(k, math.nan)), float(v)) for k, v in want.items())


class Recorded:
    """The assistant's backend with each request's own figures from llama.cpp (`timings`:
    prompt tokens read, prompt tokens found in the slot's cache, tokens generated, and the
    server's milliseconds for each). On a shared, loaded machine wall time mostly measures the
    other processes; these say what one question costs the server. Requests are not streamed
    here (the worker streams the greedy one; the server's work is the same)."""

    def __init__(self, backend) -> None:
        self.backend, self.spec = backend, backend.spec
        self.calls: list[dict] = []

    def _create(self, messages: list[dict], params: GenerationParams, n: int = 1):
        from apps.inference.backends.openai_backend import _request_params

        params.validate()
        extra = {"n": n} if n > 1 else {}
        try:
            # No client timeout or retry: on a shared server a request may wait long for a slot,
            # and a retry would queue it again at the back.
            reply = self.backend.client.with_options(timeout=1800, max_retries=0).chat.completions.create(
                model=self.backend.model, messages=messages, **_request_params(params), **extra
            )
        except self.backend._errors as exc:
            self.calls.append({"failed": 1})
            raise self.backend._fail(exc) from None
        self.calls.append((reply.model_extra or {}).get("timings") or {})
        return [choice.message.content or "" for choice in sorted(reply.choices, key=lambda c: c.index)]

    def chat(self, messages: list[dict], params: GenerationParams, should_stop=None):
        yield from self._create(messages, params)

    def chat_choices(self, messages: list[dict], params: GenerationParams, n: int) -> list[str]:
        return self._create(messages, params, n)

    def generate_json(self, *args, **kwargs):
        return self.backend.generate_json(*args, **kwargs)

    def totals(self) -> dict:
        def total(key: str) -> float:
            return sum(call.get(key, 0) or 0 for call in self.calls)

        return {
            "requests": len(self.calls),
            "prompt_read": int(total("prompt_n")),
            "prompt_cached": int(total("cache_n")),
            "generated": int(total("predicted_n")),
            "server_seconds": round((total("prompt_ms") + total("predicted_ms")) / 1000, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument(
        "--via",
        choices=["api", "process"],
        default="api",
        help="api: upload, ask and poll through the HTTP API with a real worker (started here, stopped at the "
        "end); process: call assistant.solve in this process (no web, queue or worker)",
    )
    parser.add_argument(
        "--mode", choices=assistant.MODES, default="auto", help="the mode sent with each question (api)"
    )
    parser.add_argument("--candidates", type=int, default=3, help="code candidates (process; api: TABLES_CANDIDATES)")
    parser.add_argument("--task", default="")
    parser.add_argument("--match", default="", help="only the questions this regular expression finds")
    parser.add_argument(
        "--text",
        choices=["unsettled", "always"],
        default="unsettled",
        help="(process) when queries get the text answer too: as mode auto does (only when the code candidates do "
        "not settle it), or always (mode both)",
    )
    parser.add_argument("--out", default="")
    parser.add_argument("--report", help="print the figures of a finished or partial run's JSON and stop")
    parser.add_argument("--resume", action="store_true", help="keep the questions already in --out, run the rest")
    args = parser.parse_args()
    if args.report:
        rows = json.loads(Path(args.report).read_text())
        report(rows, "(from " + args.report + ")", args.candidates, sum(r["seconds"] for r in rows))
        return
    out = Path(args.out or BASE_DIR / "var" / "bench" / f"tables_eval_{args.via}.json")
    tables = build_tables()
    cases = interleaved([c for c in CASES if not args.task or c["task"] == args.task])
    if args.match:
        cases = [c for c in cases if re.search(args.match, c["question"], re.IGNORECASE)]
    if args.limit:
        cases = cases[: args.limit]
    spec = model_for_role("assistant")
    rows = json.loads(out.read_text()) if args.resume and out.exists() else []
    done = {row["question"] for row in rows}
    print(f"load average at the start: {load()}; assistant at {spec.source}", flush=True)
    if args.via == "api":
        from bench import tables_api

        tables_api.ensure_database(os.environ.get("DATABASE_URL", ""))
        stack = tables_api.start_stack(out.parent / "tables_api_logs")
        runner = tables_api.ApiBench(stack, tables_api.bench_token())
        answer = lambda case: via_api(case, runner, tables, args.mode)  # noqa: E731
        candidates = settings.TABLES_CANDIDATES
    else:
        stack, backend = None, Recorded(load_backend(spec))
        answer = lambda case: in_process(case, backend, tables, args)  # noqa: E731
        candidates = args.candidates
    started = time.monotonic()
    # `kill` (as for a run in the background, which ignores Ctrl-C) ends it like Ctrl-C: through
    # the finally below, which stops the web process and the worker.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        for number, case in enumerate(cases, start=1):
            if case["question"] in done:
                continue
            row = {"n": number, "table": case["table"], "task": case["task"], "question": case["question"]}
            row.update(answer(case))
            row["load"] = os.getloadavg()[0]
            rows.append(row)
            # Written after every question: a long run stopped early still has its figures (--report).
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rows, indent=1, ensure_ascii=False, default=str))
            print(
                f"{number:3d}. {case['task']:<7} {case['table']:<10} {case['question'][:52]:<52} "
                f"single={'ok' if row['single'] else '--'} selected={'ok' if row['selected'] else '--'} "
                f"{row['seconds']:.1f}s {row.get('requests', '')}req load {row['load']:.1f}",
                flush=True,
            )
    finally:
        if stack is not None:
            runner.close()
            stack.stop()
    report(rows, f"{spec.name} via {args.via}", candidates, time.monotonic() - started)


def interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def in_process(case: dict, backend: "Recorded", tables: dict, args) -> dict:
    """One question answered by assistant.solve in this process, the worker's code path."""
    frame = tables[case["table"]]
    others = {name: tables[name] for name in case.get("others", [])}
    gold = case["gold"](frame, *others.values()) if callable(case["gold"]) else case["gold"]
    row: dict = {}
    t0 = time.monotonic()
    backend.calls.clear()
    if case["task"] == "chart":
        raw = backend.generate_json(
            charts.spec_prompt(frame, case["question"]),
            schema=charts.spec_schema(frame),
            params=GenerationParams(temperature=0, max_tokens=80),
        )
        chart_spec = charts.refine_spec(raw, frame, case["question"])
        data = charts.aggregate(frame, chart_spec)
        row.update(mode="chart", single=chart_right(frame, gold, chart_spec, data), spec=chart_spec)
        row["selected"] = row["single"]
    elif case.get("mode") == "text":
        messages = text_prompt(frame, case["question"], DOCUMENT_TABLES.get(case["table"], ""))
        text = "".join(backend.chat(messages, GenerationParams(temperature=0, max_tokens=assistant.TEXT_TOKENS)))
        row.update(mode="text", single=text_matches(gold, text), text=text.strip()[:200])
        row["selected"] = row["single"]
    else:
        query = case["task"] == "query" or not isinstance(gold, pd.DataFrame)
        solution = assistant.solve(
            frame,
            case["question"],
            backend,
            assistant.greedy_code(backend),
            want_text=args.text if query else "never",
            candidates_wanted=args.candidates,
            others=others,
        )
        greedy = solution.candidates[0]
        code_only = choose(solution.candidates, solution.expected, "").chosen
        chosen = solution.choice.chosen
        right = scorer(gold, query, case.get("sort_key", ""))
        if query:
            text_ok = text_matches(gold, solution.text) if solution.text else False
            row.update(
                mode="code",
                single=right(greedy),
                code_selected=right(code_only),
                selected=right(chosen) if chosen else text_ok,
                fallback=chosen is None,
            )
            if solution.text:
                row["text"] = text_ok
        else:
            row.update(mode="code", single=right(greedy), code_selected=right(code_only), selected=right(chosen))
        row.update(
            agreeing=solution.choice.agreeing,
            candidates=len(solution.candidates),
            ran=solution.choice.ran,
            repaired=solution.first_failure is not None,
            failures=[f"{c.kind}: {c.error[:160]}" for c in solution.candidates if not c.ok],
            chosen_code=(chosen or greedy).code[:300],
            answer=str((chosen or greedy).key)[:120],
        )
    row["gold"] = str(plain(gold))[:120] if not isinstance(gold, pd.DataFrame) else "(table)"
    row["seconds"] = round(time.monotonic() - t0, 2)
    row.update(backend.totals())
    return row


def scorer(gold, query: bool, sort_key: str = ""):
    """Whether a candidate is right: its value (a query) or the table it leaves (an edit)."""
    if query:
        return lambda c: c is not None and c.ok and key_matches(gold, c.key)
    return lambda c: table_matches(gold, candidate_table(c), sort_key)


def via_api(case: dict, runner, tables: dict, mode: str) -> dict:
    """One question through the API and the worker, scored with the same checks. The greedy
    candidate (single sample) and, when a text answer took part, the checks-only choice are
    re-run here in the sandbox from the code the API returns (after the timed part)."""
    others = case.get("others", [])
    sheet_id, read = runner.sheet_for(case["table"], tables, others, DOCUMENT_TABLES.get(case["table"], ""))
    frame = read[case["table"]]
    other_frames = {name: read[name] for name in others}
    gold = case["gold"](frame, *other_frames.values()) if callable(case["gold"]) else case["gold"]
    got = runner.ask(sheet_id, case["question"], mode)
    message = got.pop("message")
    row: dict = {**got, "server_mode": message["mode"], "status": message["status"], "failure": message["failure_kind"]}
    output = message["output"] or {}
    if message["mode"] == "chart":
        right = output.get("type") == "chart" and case["task"] == "chart"
        if right:
            data = pd.DataFrame(output["table"]["rows"], columns=output["table"]["columns"])
            right = chart_right(frame, gold, output["spec"], data)
        row.update(mode="chart", single=right, selected=right, spec=output.get("spec"))
    elif message["mode"] == "text":
        right = text_matches(gold, message["text"] or "")
        row.update(mode="text", single=right, selected=right, text=(message["text"] or "").strip()[:200])
    else:
        query = case["task"] == "query" or not isinstance(gold, pd.DataFrame)
        edit = case["question"] if assistant.is_edit(case["question"]) else ""
        right = scorer(gold, query, case.get("sort_key", ""))
        chosen = message["chosen"]
        summaries = message["candidates"] or []
        if query:
            chosen_right = bool(message["verified"]) and output.get("type") not in (None, "version")
            chosen_right = chosen_right and key_matches(gold, canonical(output))
            text_ok = text_matches(gold, message["text"]) if message["text"] else False
            selected = chosen_right if message["verified"] else text_ok
        else:
            table = None
            if message["version"]:
                table = runner.version_table(message["version"])
                runner.undo(sheet_id)  # the next question sees the table as uploaded
            elif output.get("type") == "table":
                table = table_from_json(output["table"])
            chosen_right = selected = chosen is not None and table_matches(gold, table, case.get("sort_key", ""))

        def rerun(summary: dict):
            return assistant.evaluate(summary["code"], frame, True, other_frames, edit)

        single = chosen_right if chosen == 0 else bool(summaries) and right(rerun(summaries[0]))
        code_selected = chosen_right
        if query and message["text"] and summaries:
            expected = expected_kind(case["question"], bool(edit))
            code_selected = right(choose([rerun(s) for s in summaries], expected, "").chosen)
        row.update(mode="code", single=single, code_selected=code_selected, selected=selected)
        if query:
            row["fallback"] = not message["verified"]
            if message["text"]:
                row["text"] = text_ok
        row.update(
            agreeing=message["agreeing"],
            candidates=len(summaries),
            repaired=message["first_attempt"] is not None,
            failures=[f"{s['kind']}: {(s['error'] or '')[:160]}" for s in summaries if not s["ok"]],
            chosen_code=summaries[chosen]["code"][:300] if chosen is not None else "",
            answer=str(output.get("value", output.get("description", output.get("type"))))[:120],
        )
    row["gold"] = str(plain(gold))[:120] if not isinstance(gold, pd.DataFrame) else "(table)"
    return row


def interleaved(cases: list[dict]) -> list[dict]:
    """An order in which every prefix is a fair sample, so that a run cut short (--limit, or
    stopped) still covers every table and every task type in their shares of the whole: within
    a task type the tables take turns, and each case sits at its place in its task type's list
    scaled to the length of the run."""
    by_table: dict[str, list[dict]] = {}
    for case in cases:
        by_table.setdefault(case["table"], []).append(case)
    queues = list(by_table.values())
    turns = []
    while any(queues):
        for queue in queues:
            if queue:
                turns.append(queue.pop(0))
    by_task: dict[str, list[dict]] = {}
    for case in turns:
        by_task.setdefault(case["task"], []).append(case)
    tasks = list(by_task)
    placed = [
        ((rank + 0.5) / len(group), tasks.index(task), case)
        for task, group in by_task.items()
        for rank, case in enumerate(group)
    ]
    return [case for *_, case in sorted(placed, key=lambda item: item[:2])]


def share(rows: list[dict], key: str) -> str:
    scored = [r for r in rows if key in r]
    if not scored:
        return "   n/a"
    right = sum(bool(r[key]) for r in scored)
    return f"{right:3d}/{len(scored):<3d} {right / len(scored):6.1%}"


def report(rows: list[dict], model: str, candidates: int, seconds: float) -> None:
    print(
        f"\nmodel {model}, {len(rows)} questions over {len({r['table'] for r in rows})} tables, "
        f"{candidates} code candidates, {seconds:.0f} s in all"
    )
    print(f"{'task':<8} {'n':>3}  {'single sample':>16}  {'selected':>16}")
    for task in ("query", "update", "insert", "delete", "merge", "chart"):
        subset = [r for r in rows if r["task"] == task]
        if subset:
            print(f"{task:<8} {len(subset):>3}  {share(subset, 'single'):>16}  {share(subset, 'selected'):>16}")
    print(f"{'all':<8} {len(rows):>3}  {share(rows, 'single'):>16}  {share(rows, 'selected'):>16}")
    code_rows = [r for r in rows if r["mode"] == "code"]
    query_rows = [r for r in code_rows if "fallback" in r]
    print("\nby mode:")
    print(f"  code, single sample            {share(code_rows, 'single')}")
    print(f"  code, selected by checks       {share(code_rows, 'code_selected')}")
    print(f"  both (checks + text vote, unverified text when no code ran) {share(code_rows, 'selected')}")
    print(
        f"  text answers read for spreadsheet queries: {sum('text' in r for r in query_rows)} of {len(query_rows)}; "
        f"right {share(query_rows, 'text')}"
    )
    print(f"  text, document table           {share([r for r in rows if r['mode'] == 'text'], 'single')}")
    print(f"  chart                          {share([r for r in rows if r['mode'] == 'chart'], 'single')}")
    fallbacks = sum(1 for r in query_rows if r.get("fallback"))
    repaired = sum(1 for r in code_rows if r.get("repaired"))
    print(f"  repair turns: {repaired}; answers given as unverified text: {fallbacks}")
    if code_rows:
        print(f"  candidates per code question: {statistics.mean(r['candidates'] for r in code_rows):.2f}")
    api_rows = [r for r in rows if "queued" in r]
    if api_rows:
        print(
            f"\nthrough the API: statuses {dict(Counter(r['status'] for r in api_rows))}; "
            f"chart questions not routed to a chart: {sum(r['task'] == 'chart' and r['mode'] != 'chart' for r in rows)}"
        )
        print(
            "  medians: "
            + ", ".join(
                f"{key} {statistics.median(r[key] or 0 for r in api_rows):.2f}" for key in ("queued", "ran", "requests")
            )
            + "  (queued/ran: s from the job's own timestamps; requests: to the model)"
        )
    loads = [r["load"] for r in rows if "load" in r]
    if loads:
        print(
            f"load average (1 min) over the questions: median {statistics.median(loads):.2f}, max {max(loads):.2f}; "
            f"now {load()}"
        )
    timed = [r for r in rows if "prompt_read" in r]
    if timed:
        print("\nserver work per question (llama.cpp timings; medians):")
        for key in ("requests", "prompt_read", "prompt_cached", "generated", "server_seconds"):
            print(f"  {key:<15} {statistics.median(r[key] for r in timed):8.1f}")
    print("\nseconds per question:")
    for label, subset in (("all", rows), *((mode, [r for r in rows if r["mode"] == mode]) for mode in MODES)):
        if subset:
            print(
                f"  {label:<6} n={len(subset):<3} median {statistics.median(s['seconds'] for s in subset):6.1f}  "
                f"p95 {p95(sorted(s['seconds'] for s in subset)):6.1f}"
            )


MODES = ("code", "text", "chart")


def p95(times: list[float]) -> float:
    return times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]


if __name__ == "__main__":
    main()
