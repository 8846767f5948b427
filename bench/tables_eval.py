"""Table QA evaluation: 40 questions over 5 tables, answered both ways as the assistant
does it (pandas code run in the sandbox; a text answer from the markdown table), scored
against gold answers computed from the table by a trusted pandas expression.

Prints accuracy per mode and the cross-way agreement rate. Not a test: the packaged
135M model gets most answers wrong; a bigger model by TABLES_MODEL does better.
Run: DATABASE_URL=... .venv/bin/python bench/tables_eval.py [--limit N]"""

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

import pandas as pd  # noqa: E402

from apps.inference.backends import GenerationParams  # noqa: E402
from apps.inference.registry import model_for_role  # noqa: E402
from apps.inference.services import load_backend  # noqa: E402
from apps.tables import assistant  # noqa: E402
from apps.tables.sandbox import run_code  # noqa: E402

DATA = BASE_DIR / "bench" / "data"


def plain(value):
    return value.item() if hasattr(value, "item") else value


def matches(gold, answer) -> bool:
    """Exact for text (case-insensitive), close for numbers; a text answer may contain the gold."""
    if answer is None:
        return False
    if isinstance(gold, int | float) and not isinstance(gold, bool):
        if isinstance(answer, int | float) and not isinstance(answer, bool):
            return math.isclose(float(answer), float(gold), rel_tol=1e-3)
        numbers = [float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", str(answer))]
        return any(math.isclose(n, float(gold), rel_tol=1e-3) for n in numbers)
    gold_text, answer_text = str(gold).strip().lower(), str(answer).strip().lower()
    return answer_text == gold_text or re.search(rf"\b{re.escape(gold_text)}\b", answer_text) is not None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    cases = json.loads((DATA / "tables_eval.json").read_text())
    if args.limit:
        cases = cases[: args.limit]
    backend = load_backend(model_for_role("assistant"))
    code_params = GenerationParams(temperature=0, max_tokens=160, repetition_penalty=1.2)
    text_params = GenerationParams(temperature=0, max_tokens=48, repetition_penalty=1.2)
    code_right = text_right = agree = comparable = ran = 0
    started = time.monotonic()
    for number, case in enumerate(cases, start=1):
        frame = pd.read_csv(DATA / "tables" / case["table"])
        gold = plain(eval(case["gold"], {"df": frame, "round": round, "len": len}))  # noqa: S307  (our own gold)
        code = assistant.extract_code(
            "".join(backend.chat(assistant.code_prompt(frame, case["question"]), code_params))
        )
        run = run_code(code, {"df": frame})
        code_answer = run.result.get("value") if run.ok and run.result.get("type") == "value" else None
        ran += run.ok
        text = "".join(backend.chat(assistant.text_prompt(frame, case["question"]), text_params)).strip()
        code_ok, text_ok = matches(gold, code_answer), matches(gold, text)
        code_right += code_ok
        text_right += text_ok
        verdict = assistant.answers_agree(run.result if run.ok else {}, text)
        if verdict is not None:
            comparable += 1
            agree += verdict
        print(
            f"{number:2d}. {case['table']:<14} {case['question'][:48]:<48} gold={gold!r:<14} "
            f"code={'ok' if code_ok else '--'} text={'ok' if text_ok else '--'}",
            flush=True,
        )
    total = len(cases)
    print(
        f"\nmodel {model_for_role('assistant').name}, {total} questions over "
        f"{len({c['table'] for c in cases})} tables, {time.monotonic() - started:.0f} s"
    )
    print(
        f"code mode (pandas in the sandbox): {code_right}/{total} = {code_right / total:.1%} correct; "
        f"{ran}/{total} ran without error"
    )
    print(f"text mode (markdown table):        {text_right}/{total} = {text_right / total:.1%} correct")
    rate = f"{agree}/{comparable} = {agree / comparable:.1%}" if comparable else "n/a (no comparable pairs)"
    print(f"cross-way agreement on comparable answers: {rate}")


if __name__ == "__main__":
    main()
