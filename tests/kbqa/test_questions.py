"""Question-program pairs generated from a KB's ontology (the parser's training data)."""

from collections import Counter

from apps.kbqa.ontology import parse_sketch, run, sketch_of
from apps.kbqa.questions import TEMPLATES, generate_examples


def test_geo_yields_over_2000_pairs_across_all_templates(geo_onto):
    report = generate_examples(geo_onto, 2100, seed=1)
    assert len(report.examples) >= 2000
    assert len({e.question for e in report.examples}) == len(report.examples)  # no duplicates
    per_template = Counter(e.template for e in report.examples)
    assert set(TEMPLATES) <= set(per_template), report.failed_templates
    # A compositional shape the KB cannot fill (geo has no year qualifiers on relations) is named.
    from apps.kbqa.compose import COMPOSED

    assert set(per_template) | set(report.failed_templates) == set(TEMPLATES) | set(COMPOSED)
    sketches = {e.sketch for e in report.examples}
    assert len(sketches) >= 12
    # Multi-hop, comparisons, counts, qualifiers and verification are all there.
    functions = {step["function"] for e in report.examples for step in e.program}
    assert {
        "Relate",
        "And",
        "SelectBetween",
        "SelectAmong",
        "Count",
        "FilterNum",
        "VerifyNum",
        "VerifyStr",
    } <= functions
    assert {"QueryRelationQualifier", "QueryRelation", "FilterStr", "QueryAttr"} <= functions


def test_each_pair_runs_to_its_answer(elements_onto):
    report = generate_examples(elements_onto, 300, seed=2)
    assert len(report.examples) == 300
    for example in report.examples:
        assert run(elements_onto, example.program) == example.answer, example.question


def test_wording_sets_are_disjoint(geo_onto):
    train = generate_examples(geo_onto, 400, seed=3, wordings="train").examples
    heldout = generate_examples(geo_onto, 400, seed=3, wordings="heldout").examples
    assert len(train) == len(heldout) == 400
    assert not {e.question for e in train} & {e.question for e in heldout}


def test_templates_a_small_kb_cannot_fill_are_skipped_and_named(tiny_data):
    from apps.kbqa import kb_format, kopl
    from apps.kbqa.ontology import Ontology

    onto = Ontology(kopl.AtriumKoPLEngine(kb_format.normalize_kb(tiny_data)))
    report = generate_examples(onto, 500, seed=0)  # more than it holds: every template gets tried
    assert report.examples
    # No tiny entity has three incoming facts of one relation to choose the extreme among.
    assert "select_among_related" in report.failed_templates
    assert not set(report.failed_templates) & set(report.per_template)
    for example in report.examples:
        assert run(onto, example.program) == example.answer


def test_sketch_round_trip():
    program = [
        {"function": "Find", "dependencies": [], "inputs": ["a"]},
        {"function": "Find", "dependencies": [], "inputs": ["b"]},
        {"function": "SelectBetween", "dependencies": [0, 1], "inputs": ["k", "greater"]},
    ]
    assert sketch_of(program) == "Find() Find() SelectBetween(0,1)"
    assert parse_sketch(sketch_of(program)) == [("Find", []), ("Find", []), ("SelectBetween", [0, 1])]
