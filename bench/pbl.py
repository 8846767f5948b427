"""PBL studio benchmark (model work in this process, no database): what each policy and
model step costs on this machine, and how the boundary policy before generation does on
labelled learner messages: rules, nearest examples, both (what the policy uses), and the
constrained model call alone.

Run: .venv/bin/python bench/pbl.py   (BENCH_RUNS=3 by default)"""

import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from apps.inference.backends import GenerationParams  # noqa: E402
from apps.inference.registry import model_for_role  # noqa: E402
from apps.inference.services import load_backend  # noqa: E402
from apps.pbl import boundary, judge  # noqa: E402
from apps.pbl.agents import agent_messages  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SPEC = json.loads((BASE_DIR / "apps/pbl/data/clean_water.json").read_text())
STAGE = SPEC["stages"][0]
PROJECT = SimpleNamespace(title=SPEC["title"], driving_question=SPEC["driving_question"], spec=SPEC)
# Learner messages labelled as a teacher would ("seen" ones were looked at while writing the rules
# and prototypes; "held_out" ones never changed them), plus the stage's own task pasted verbatim.
CASES = json.loads((BASE_DIR / "tests/pbl/data/boundary_cases.json").read_text())
LABELLED = [(c["text"], c["label"]) for c in CASES["seen"]] + [(STAGE["deliverable"]["prompt"], "verbatim_task")]
HELD_OUT = [(c["text"], c["label"]) for c in CASES["held_out"]]


def timed(fn, runs=RUNS):
    times, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    spec = model_for_role("assistant")
    start = time.perf_counter()
    backend = load_backend(spec)
    print(f"model {spec.name}: loaded in {time.perf_counter() - start:.2f} s")

    text = LABELLED[0][0]
    t, _ = timed(lambda: boundary.rule_check(text, STAGE), runs=200)
    print(f"rules before generation: {t * 1e6:.0f} µs per message")
    draft = " ".join(["Lead from old pipes harms students' health, so the school must test the water."] * 8)
    t, _ = timed(lambda: boundary.check_after(draft, STAGE, "medium"), runs=200)
    print(f"deliverable-ready check after generation: {t * 1e6:.0f} µs per draft ({len(draft.split())} words)")

    t, _ = timed(lambda: backend.generate_json(boundary.classifier_messages(text, STAGE), choices=boundary.CHOICES))
    print(f"constrained classification (4 choices, scored): {t * 1000:.0f} ms")

    agent = SPEC["agents"][2]
    messages = agent_messages(agent, PROJECT, STAGE, "@Sam how could we split the work?", [])
    params = GenerationParams(temperature=0.3, max_tokens=settings.PBL_AGENT_MAX_TOKENS, repetition_penalty=1.2, seed=1)
    first, pieces = [], []

    def reply():
        start, count, ttft = time.perf_counter(), 0, None
        for _piece in backend.chat(messages, params):
            ttft = ttft or time.perf_counter() - start
            count += 1
        first.append(ttft)
        pieces.append(count)

    t, _ = timed(reply)
    print(
        f"agent reply: {t:.2f} s for ~{statistics.median(pieces)} tokens "
        f"({statistics.median(pieces) / t:.1f} tokens/s, first token {statistics.median(first) * 1000:.0f} ms, "
        f"prompt {backend.count_tokens(backend.chat_prompt(messages))} tokens)"
    )

    criterion, milestone = STAGE["milestones"][0]["criteria"][0], STAGE["milestones"][0]
    sample = "Who is affected: students and staff who drink from the school fountain."
    jp = GenerationParams(temperature=0, max_tokens=settings.PBL_JUDGE_MAX_TOKENS)
    start = time.perf_counter()
    backend.generate_json(judge.judge_messages(criterion, milestone, sample), schema=judge.VERDICT_SCHEMA, params=jp)
    print(f"judge, first criterion (builds the JSON enforcer once per process): {time.perf_counter() - start:.2f} s")
    t, _ = timed(
        lambda: backend.generate_json(
            judge.judge_messages(criterion, milestone, sample), schema=judge.VERDICT_SCHEMA, params=jp
        )
    )
    print(f"judge, per criterion after that: {t:.2f} s")

    t, _ = timed(lambda: boundary.nearest_scores(text), runs=20)
    print(
        f"nearest-example check (MiniLM embedding + {sum(map(len, boundary._prototype_embeddings().values()))} "
        f"prototypes): {t * 1000:.1f} ms per message"
    )

    for name, cases in (("seen while writing the rules", LABELLED), ("held out", HELD_OUT)):
        counts = {
            "rules": [0, 0],
            "nearest": [0, 0],
            "rules + nearest": [0, 0],
            "model alone": [0, 0],
            "policy, medium": [0, 0],
            "policy, high": [0, 0],
        }
        for message, label in cases:
            over_reaching = label != "ok"
            nearest = boundary.nearest_scores(message)
            model_label = backend.generate_json(boundary.classifier_messages(message, STAGE), choices=boundary.CHOICES)
            flags = {
                "rules": boundary.rule_check(message, STAGE)[0] != "ok",
                "nearest": boundary.nearest_label(nearest, "medium") != "ok",
                "rules + nearest": not boundary.decide_before(message, STAGE, "medium", None, nearest).allowed,
                "model alone": model_label != "ok",
                "policy, medium": not boundary.decide_before(message, STAGE, "medium", model_label, nearest).allowed,
                "policy, high": not boundary.decide_before(message, STAGE, "high", model_label, nearest).allowed,
            }
            for way, flagged in flags.items():
                counts[way][0 if over_reaching else 1] += flagged
        n_bad = sum(label != "ok" for _m, label in cases)
        n_ok = len(cases) - n_bad
        print(f"boundary before generation, {name} ({n_bad} over-reaching, {n_ok} fair messages):")
        for way, (caught, false_alarms) in counts.items():
            print(f"  {way:16s} caught {caught}/{n_bad}, false alarms {false_alarms}/{n_ok}")


if __name__ == "__main__":
    main()
