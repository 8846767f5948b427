"""PBL studio benchmark (model work in this process, no database): what each policy and
model step costs on this machine, and how the boundary policy before generation does on
labelled learner messages: rules, nearest examples, both (what the policy uses), and the
constrained model call alone.

Held-out figures (issue 15) come from tests/pbl/data/boundary_heldout.json, written before the
rules were tuned (on 'seen' and boundary_tuning.json) and never used to tune them: over-reaching
messages refused, fair ones refused, deliverable-ready drafts released (goals: >= 95%, <= 5%, 0),
at each strictness; then the agent reply latency (median, p95) as the worker runs it: the
uncertainty draft, retrieval when it fires, the streamed reply and the check after it.

The retrieval threshold (SeaKR: retrieve when the model is unsure) is chosen by the `entropy`
part from the draft entropies of bench/data/pbl_retrieval.json: questions whose answer needs the
project's resources vs general ones; it prints both distributions, the threshold that separates
the calibration questions best, and how it fires on the check questions.

Run: .venv/bin/python bench/pbl.py   (BENCH_RUNS=3; BENCH_REPLIES=6 replies timed; BENCH_MODEL_LABELS=1
adds the constrained model label per message, as the policy uses it for medium and high agents;
BENCH_PARTS=heldout,latency,entropy runs only those)"""

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
from apps.pbl.agents import RETRIEVE_ENTROPY, agent_messages, grounding, policy_before, uncertainty  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SPEC = json.loads((BASE_DIR / "apps/pbl/data/clean_water.json").read_text())
STAGE = SPEC["stages"][0]
PROJECT = SimpleNamespace(title=SPEC["title"], driving_question=SPEC["driving_question"], spec=SPEC)
# Learner messages labelled as a teacher would ("seen" ones were looked at while writing the rules
# and prototypes; "held_out" ones never changed them), plus the stage's own task pasted verbatim.
CASES = json.loads((BASE_DIR / "tests/pbl/data/boundary_cases.json").read_text())
LABELLED = [(c["text"], c["label"]) for c in CASES["seen"]] + [(STAGE["deliverable"]["prompt"], "verbatim_task")]
HELD_OUT = [(c["text"], c["label"]) for c in CASES["held_out"]]
HELD_OUT_SET = json.loads((BASE_DIR / "tests/pbl/data/boundary_heldout.json").read_text())
SPECS = {
    name: json.loads((BASE_DIR / f"apps/pbl/data/{name}.json").read_text()) for name in ("clean_water", "pocket_park")
}
REPLIES = int(os.environ.get("BENCH_REPLIES", "6"))
MODEL_LABELS = os.environ.get("BENCH_MODEL_LABELS") == "1"


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
    # BENCH_PARTS=heldout,latency runs only those parts (the model timings take minutes on a busy CPU).
    parts = set(filter(None, os.environ.get("BENCH_PARTS", "").split(",")))
    if parts:
        if "heldout" in parts:
            held_out_figures(backend)
        if "latency" in parts:
            reply_latency(backend)
        if "entropy" in parts:
            entropy_calibration(backend)
        return

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
        f"prompt {prompt_tokens(backend, messages)} tokens)"
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

    for name, cases in (("seen while writing the rules", LABELLED), ("held out in the first round", HELD_OUT)):
        counts = {"rules": [0, 0], "nearest": [0, 0], "rules + nearest": [0, 0]}
        for message, label in cases:
            over_reaching = label != "ok"
            nearest = boundary.nearest_scores(message)
            flags = {
                "rules": boundary.rule_check(message, STAGE)[0] != "ok",
                "nearest": boundary.nearest_label(nearest, "medium") != "ok",
                "rules + nearest": not boundary.decide_before(message, STAGE, "medium", None, nearest).allowed,
            }
            for way, flagged in flags.items():
                counts[way][0 if over_reaching else 1] += flagged
        n_bad = sum(label != "ok" for _m, label in cases)
        n_ok = len(cases) - n_bad
        print(f"boundary before generation, {name} ({n_bad} over-reaching, {n_ok} fair messages):")
        for way, (caught, false_alarms) in counts.items():
            print(f"  {way:16s} caught {caught}/{n_bad}, false alarms {false_alarms}/{n_ok}")

    held_out_figures(backend)
    reply_latency(backend)


def pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else "0/0"


def held_out_figures(backend) -> None:
    """The issue's three figures on the held-out set, per agent strictness."""
    messages = HELD_OUT_SET["messages"]
    nearest = [boundary.nearest_scores(m["text"]) for m in messages]
    labels = [None] * len(messages)
    if MODEL_LABELS:
        labels = [
            backend.generate_json(boundary.classifier_messages(m["text"], STAGE), choices=boundary.CHOICES)
            for m in messages
        ]
    bad = [i for i, m in enumerate(messages) if m["label"] != "ok"]
    fair = [i for i, m in enumerate(messages) if m["label"] == "ok"]
    how = "rules + nearest examples + model label" if MODEL_LABELS else "rules + nearest examples, no model label"
    print(f"HELD-OUT boundary ({len(bad)} over-reaching, {len(fair)} fair messages, EN+ZH; {how}):")
    for strictness in ("low", "medium", "high"):

        def refused(i: int, strictness: str = strictness) -> bool:
            return not boundary.decide_before(messages[i]["text"], STAGE, strictness, labels[i], nearest[i]).allowed

        missed = [messages[i]["kind"] for i in bad if not refused(i)]
        print(
            f"  {strictness:6s} over-reaching refused {pct(len(bad) - len(missed), len(bad))}"
            f"   fair refused {pct(sum(refused(i) for i in fair), len(fair))}"
            + (f"   missed: {', '.join(missed)}" if missed else "")
        )
    drafts = HELD_OUT_SET["drafts"]
    ready = [d for d in drafts if d["ready"]]
    guidance = [d for d in drafts if not d["ready"]]
    print(
        f"HELD-OUT after generation ({len(ready)} deliverable-ready drafts: prose, bullets, tables, EN+ZH; "
        f"{len(guidance)} guidance replies):"
    )
    for strictness in ("low", "medium", "high"):

        def stopped(d: dict, strictness: str = strictness) -> bool:
            stage = next(s for s in SPECS[d["project"]]["stages"] if s["key"] == d["stage"])
            return boundary.check_after(d["text"], stage, strictness).ready

        released = [d["shape"] for d in ready if not stopped(d)]
        print(
            f"  {strictness:6s} deliverable-ready released {len(released)}/{len(ready)}"
            f"   guidance stopped {sum(stopped(d) for d in guidance)}/{len(guidance)}"
            + (f"   released: {', '.join(released)}" if released else "")
        )


def prompt_tokens(backend, messages: list[dict]) -> int:
    """The prompt's tokens: the chat template's where the backend has it, else the contents'."""
    if hasattr(backend, "chat_prompt"):
        return backend.count_tokens(backend.chat_prompt(messages))
    return backend.count_tokens("\n".join(m["content"] for m in messages))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def reply_latency(backend) -> None:
    """Agent replies as the worker makes them (apps.pbl.agents._answer): the policy before
    (nearest examples, the constrained label where it counts), the short uncertainty draft and retrieval when it
    fires, the streamed reply, the check after it. Fair held-out questions. Each step is timed
    so a slow reply shows where the time goes."""
    questions = [m["text"] for m in HELD_OUT_SET["messages"] if m["label"] == "ok" and m["text"].isascii()]
    agent = SPEC["agents"][0]
    params = GenerationParams(temperature=0.3, max_tokens=settings.PBL_AGENT_MAX_TOKENS, repetition_penalty=1.2)
    steps = {"policy": [], "draft": [], "first token": [], "generation": [], "total": []}
    tokens, prompts, fired, stopped = [], [], 0, 0
    for seed, question in enumerate(questions[:REPLIES]):
        start = time.perf_counter()
        policy_before(backend, question, STAGE, agent["strictness"])
        policy = time.perf_counter()
        messages, retrieval = grounding(backend, agent, PROJECT, STAGE, question, [], seed=seed)
        drafted = time.perf_counter()
        first, text, count = None, "", 0
        for piece in backend.chat(messages, params):
            first = first or time.perf_counter()
            text += piece
            count += 1
        stopped += boundary.check_after(text, STAGE, agent["strictness"]).ready
        end = time.perf_counter()
        for name, value in (
            ("policy", policy - start),
            ("draft", drafted - policy),
            ("first token", (first or end) - drafted),
            ("generation", end - drafted),
            ("total", end - start),
        ):
            steps[name].append(value)
        tokens.append(count)
        prompts.append(prompt_tokens(backend, messages))
        fired += retrieval["fired"]
        # One line per reply as it comes: on a busy machine the run may be stopped before the summary.
        print(
            f"  reply {seed + 1}: {end - start:.1f} s (policy {policy - start:.1f}, draft {drafted - policy:.1f}, "
            f"generation {end - drafted:.1f}), {count} pieces, "
            f"retrieval {'fired' if retrieval['fired'] else 'skipped'}, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    if not steps["total"]:
        return
    times = steps["total"]
    print(
        f"agent reply latency ({len(times)} fair questions to @{agent['name']}, {settings.PBL_AGENT_MAX_TOKENS} "
        f"tokens max, load average {os.getloadavg()[0]:.2f}): median {statistics.median(times):.2f} s, "
        f"p95 {percentile(times, 0.95):.2f} s; retrieval fired {fired}/{len(times)}; "
        f"fair replies stopped after generation {stopped}/{len(times)}"
    )
    print(
        "  per step (median): "
        + ", ".join(f"{name} {statistics.median(values):.2f} s" for name, values in steps.items() if name != "total")
        + f"; reply ~{statistics.median(tokens)} stream pieces, prompt {statistics.median(prompts)} tokens"
    )


def entropy_calibration(backend) -> None:
    """The draft's mean next-token entropy on questions that need the project's resources and on
    general ones; the threshold that best separates the calibration questions (ties go to the
    lower one: retrieving needlessly costs a longer prompt, not retrieving costs a wrong answer)."""
    data = json.loads((BASE_DIR / "bench/data/pbl_retrieval.json").read_text())

    def measure(cases: list[dict]) -> list[tuple[float, bool, str]]:
        rows = []
        for case in cases:
            spec = SPECS[case["project"]]
            project = SimpleNamespace(title=spec["title"], driving_question=spec["driving_question"], spec=spec)
            stage = next(s for s in spec["stages"] if s["key"] == case["stage"])
            bare = agent_messages(spec["agents"][0], project, stage, case["text"], [], resources=[])
            rows.append((uncertainty(backend, bare, seed=0), case["grounded"], case["text"]))
        return rows

    def fires(rows, threshold: float) -> tuple[int, int]:
        return sum(e >= threshold for e, g, _ in rows if g), sum(e >= threshold for e, g, _ in rows if not g)

    calibration, check = measure(data["calibration"]), measure(data["check"])
    for name, rows in (("calibration", calibration), ("check", check)):
        print(f"draft entropy (nats, top-5), {name} questions:")
        for entropy, grounded, text in sorted(rows):
            print(f"  {entropy:.3f}  {'resources' if grounded else 'general  '}  {text}")
        for label, grounded in (("needs resources", True), ("general", False)):
            values = [e for e, g, _ in rows if g == grounded]
            print(
                f"  {label:15s} n={len(values)} min {min(values):.3f} median {statistics.median(values):.3f} "
                f"max {max(values):.3f}"
            )
    values = sorted({e for e, _g, _t in calibration})
    candidates = [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)] or values
    n_grounded = sum(g for _e, g, _t in calibration)
    n_general = len(calibration) - n_grounded

    def balanced(threshold: float) -> float:
        hit, false = fires(calibration, threshold)
        return (hit / n_grounded + (n_general - false) / n_general) / 2

    best = max(candidates, key=lambda t: (round(balanced(t), 6), -t))
    for label, threshold in (("chosen from calibration", best), ("in apps/pbl/agents.py", RETRIEVE_ENTROPY)):
        print(f"threshold {threshold:.3f} ({label}):")
        for name, rows in (("calibration", calibration), ("check", check)):
            hit, false = fires(rows, threshold)
            grounded = sum(g for _e, g, _t in rows)
            print(
                f"  {name:11s} retrieval fired on {hit}/{grounded} needing resources, "
                f"{false}/{len(rows) - grounded} general"
            )


if __name__ == "__main__":
    main()
