"""The worker asks the model for its boundary label only where the label could change the
decision (it cost a model call before every reply). Skipping it must never change a decision:
checked on every labelled learner message, at every strictness, against every label the
model could have given."""

import json
from pathlib import Path

import pytest

from apps.pbl import agents, boundary
from tests.pbl.conftest import demo

DATA = Path(__file__).resolve().parent / "data"
STAGE = demo()["stages"][0]
MESSAGES = [m["text"] for m in json.loads((DATA / "boundary_heldout.json").read_text())["messages"]] + [
    c["text"] for part in ("seen", "held_out") for c in json.loads((DATA / "boundary_cases.json").read_text())[part]
]


def outcome(decision: boundary.BeforeDecision) -> tuple:
    return decision.allowed, decision.label, decision.reason, decision.rule


@pytest.mark.parametrize("strictness", ["low", "medium", "high"])
def test_a_skipped_model_label_never_changes_the_decision(strictness):
    skipped = 0
    for text in MESSAGES:
        nearest = boundary.nearest_scores(text)
        if boundary.model_label_matters(text, STAGE, strictness, nearest):
            continue
        skipped += 1
        without = outcome(boundary.decide_before(text, STAGE, strictness, None, nearest))
        for label in boundary.CHOICES:
            assert outcome(boundary.decide_before(text, STAGE, strictness, label, nearest)) == without, (text, label)
    assert skipped  # the check is not vacuous: some messages skip the call at every strictness


class CountingBackend:
    def __init__(self, label: str):
        self.label, self.calls = label, 0

    def generate_json(self, messages, choices=None, **_kwargs):
        self.calls += 1
        return self.label


def test_the_worker_asks_the_model_only_where_its_label_counts():
    fair = "@Nova what should we measure first?"
    lenient, strict = CountingBackend("wants_deliverable"), CountingBackend("wants_deliverable")
    assert agents.policy_before(lenient, fair, STAGE, "low").allowed
    assert lenient.calls == 0
    # Where the label can count (a strict agent, nearest examples leaning its way), it is asked.
    for text in MESSAGES:
        nearest = boundary.nearest_scores(text)
        if boundary.model_label_matters(text, STAGE, "high", nearest):
            agents.policy_before(strict, text, STAGE, "high")
            break
    assert strict.calls == 1
