"""Compositional parsing: sketches split into a body (the set) and a head (what is asked of it)
and joined into sequences never seen whole; question cues for years, scaled numbers and answer
types; generated pairs of every compositional shape on a KB the parser never trained on."""

import json
from collections import Counter

import numpy as np
import pytest

from apps.kbqa import cues
from apps.kbqa.compose import COMPOSED
from apps.kbqa.kb_format import normalize_kb
from apps.kbqa.kopl import AtriumKoPLEngine
from apps.kbqa.ontology import Ontology, run
from apps.kbqa.questions import generate_examples
from apps.kbqa.sketches import fit_sketch_model, join_sketch, split_sketch
from tests.kbqa.conftest import TESTS_DATA


@pytest.fixture(scope="module")
def cinema_onto() -> Ontology:
    data = json.loads((TESTS_DATA / "cinema_kb.json").read_text(encoding="utf-8"))
    return Ontology(AtriumKoPLEngine(normalize_kb(data)))


@pytest.mark.parametrize(
    ("sketch", "parts"),
    [
        ("Find() Relate(0) FilterConcept(1) Count(2)", ("Find() Relate(0) FilterConcept(1)", "Count(b)")),
        ("Find() QueryAttr(0) VerifyYear(1)", ("Find()", "QueryAttr(b) VerifyYear(0)")),
        ("Find() Find() SelectBetween(0,1)", None),  # the head reads two sets: kept whole
        ("Find() Relate(0) QueryRelationQualifier(0,1)", None),
    ],
)
def test_split_and_join(sketch, parts):
    assert split_sketch(sketch) == parts
    if parts:
        assert join_sketch(*parts) == sketch


def test_a_body_and_a_head_compose_into_a_sketch_never_seen_whole():
    # Feature 0 tells the body, feature 1 the head, as a question's embedding would.
    seen = {
        "Find() Relate(0) FilterConcept(1) Count(2)": (1.0, -1.0),
        "Find() Relate(0) FilterConcept(1) QueryName(2)": (1.0, 0.0),
        "FindAll() FilterConcept(0) SelectAmong(1)": (-1.0, 1.0),
        "FindAll() FilterConcept(0) Count(1)": (-1.0, -1.0),
        "FindAll() FilterConcept(0) QueryName(1)": (-1.0, 0.0),
    }
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for sketch, (x, y) in seen.items():
        for _ in range(30):
            rows.append([x + rng.normal(0, 0.1), y + rng.normal(0, 0.1), 1.0])
            labels.append(sketch)
    model = fit_sketch_model(np.array(rows, dtype=np.float32), labels)
    unseen = "Find() Relate(0) FilterConcept(1) SelectAmong(2)"
    assert unseen not in model.classes
    ranked = model.top(np.array([1.0, 3.0, 1.0], dtype=np.float32))
    assert ranked[0][0] == unseen
    restored = type(model).from_json(json.loads(json.dumps(model.as_json())))
    assert restored.top(np.array([1.0, 3.0, 1.0], dtype=np.float32))[0][0] == unseen


def test_cues():
    assert cues.years_in("Which films came out in 1988?") == [1988]
    assert cues.years_in("more than 1,000,000,000 dollars") == []
    assert [
        cues.year_op(q, y) for q, y in [("released before 1980?", 1980), ("after 2005", 2005), ("in 1999", 1999)]
    ] == [
        "<",
        ">",
        "=",
    ]
    assert cues.scaled_numbers("more than 2 million people and 1.5 billion") == [
        ("2 million", 2e6),
        ("1.5 billion", 1.5e9),
    ]
    expected = {
        "Was Alien released before 1980?": "verdict",
        "How many films did Ridley Scott direct?": "count",
        "When was the director of Jaws born?": "time",
        "In which year did Tom Hanks win it?": "time",
        "How far is Kyoto from its nearest city?": "quantity",
        "Which films were released in 1999?": None,
        "Does Alien or Jaws run longer?": None,
    }
    assert {q: cues.expected_answer(q) for q in expected} == expected


def test_compositional_pairs_on_a_kb_never_trained_on(cinema_onto):
    report = generate_examples(cinema_onto, 500, seed=1)
    made = Counter(e.template for e in report.examples)
    assert set(COMPOSED) <= set(made), set(COMPOSED) - set(made)
    functions = Counter(s["function"] for e in report.examples for s in e.program)
    for function in ("FilterYear", "VerifyYear", "QFilterYear", "And", "Or", "QueryRelationQualifier", "SelectAmong"):
        assert functions[function] > 0, function
    directions = Counter(s["inputs"][1] for e in report.examples for s in e.program if s["function"] == "Relate")
    assert directions["forward"] > 0
    assert directions["backward"] > 0
    lengths = {len(e.program) for e in report.examples}
    assert max(lengths) >= 7
    for example in report.examples:  # every pair's answer is what its program computes
        assert run(cinema_onto, example.program) == example.answer
