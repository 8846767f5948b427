"""Sandbox overhead: a trivial snippet through the sandbox vs the same snippet in-process.

Run: .venv/bin/python bench/sandbox.py   (goal: under 150 ms overhead per run)"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from apps.tables.sandbox import run_code  # noqa: E402

SNIPPET = "df['revenue'].sum()"
RUNS = 50


def main() -> None:
    df = pd.DataFrame({"month": [f"2026-{m:02d}" for m in range(1, 13)], "revenue": range(100, 1300, 100)})
    run_code(SNIPPET, {"df": df})  # starts the sandbox's parent process once, as a worker does
    sandboxed = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = run_code(SNIPPET, {"df": df})
        sandboxed.append(time.perf_counter() - started)
        assert result.ok, result.error
    in_process = []
    for _ in range(RUNS):
        started = time.perf_counter()
        eval(compile(SNIPPET, "<bench>", "eval"), {"df": df})  # noqa: S307  (the baseline, trusted)
        in_process.append(time.perf_counter() - started)
    s_ms, p_ms = statistics.median(sandboxed) * 1000, statistics.median(in_process) * 1000
    print(f"snippet {SNIPPET!r}, 12-row table, median of {RUNS} runs")
    print(f"sandbox    : {s_ms:8.2f} ms per run (static check + fork + limits + JSON both ways)")
    print(f"in-process : {p_ms:8.3f} ms per run")
    print(f"overhead   : {s_ms - p_ms:8.2f} ms (goal < 150 ms); ratio {s_ms / p_ms:.0f}x")


if __name__ == "__main__":
    main()
