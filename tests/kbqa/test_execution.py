import pytest

from apps.kbqa import kopl, services
from tests.kbqa.conftest import step


def run(kb, *steps):
    return kopl.execute_program(kb, list(steps))


def test_multi_hop_forward_then_backward(tiny_kb):
    # The capital of the country Lyon is in.
    result = run(
        tiny_kb,
        step("Find", [], "Lyon"),
        step("Relate", [0], "country", "forward"),
        step("Relate", [1], "capital", "forward"),
        step("QueryName", [2]),
    )
    assert result["error"] is None
    assert result["answer"] == ["Paris"]
    assert result["steps"][1]["output"]["entities"] == [{"id": "FR", "name": "France"}]
    # Backward Relate works only because import added the backward ends.
    cities = run(
        tiny_kb, step("Find", [], "France"), step("Relate", [0], "country", "backward"), step("QueryName", [1])
    )
    assert cities["answer"] == ["Lyon", "Paris"]


def test_count_counts_entities_not_subconcepts(tiny_kb):
    result = run(tiny_kb, step("FindAll"), step("FilterConcept", [0], "city"), step("Count", [1]))
    assert result["answer"] == 3  # Paris, Berlin, Lyon; not the concept "capital city"
    assert run(tiny_kb, step("FindAll"), step("Count", [0]))["answer"] == 5


def test_filters(tiny_kb):
    big = run(
        tiny_kb,
        step("FindAll"),
        step("FilterConcept", [0], "city"),
        step("FilterNum", [1], "population", "1000000", ">"),
    )
    assert big["answer"] == ["Berlin", "Paris"]
    old = run(tiny_kb, step("FindAll"), step("FilterYear", [0], "inception", "1000", "<"))
    assert old["answer"] == ["France"]
    iso = run(tiny_kb, step("FindAll"), step("FilterStr", [0], "ISO code", "DE"), step("QueryName", [1]))
    assert iso["answer"] == ["Germany"]


def test_select_between_and_among(tiny_kb):
    between = run(
        tiny_kb,
        step("Find", [], "France"),
        step("Find", [], "Germany"),
        step("SelectBetween", [0, 1], "area", "greater"),
    )
    assert between["answer"] == "France"
    among = run(
        tiny_kb, step("FindAll"), step("FilterConcept", [0], "city"), step("SelectAmong", [1], "population", "smallest")
    )
    assert among["answer"] == ["Lyon"]


def test_query_attr_and_verify(tiny_kb):
    area = run(tiny_kb, step("Find", [], "Germany"), step("QueryAttr", [0], "area"))
    assert area["answer"] == ["357022 square kilometre"]
    assert area["steps"][1]["output"]["values"] == [
        {"type": "quantity", "text": "357022 square kilometre", "value": 357022, "unit": "square kilometre"}
    ]
    # kopl's own str() would print -4 here
    west = run(tiny_kb, step("Find", [], "Lyon"), step("QueryAttr", [0], "longitude"))
    assert west["answer"] == ["-4.5 degree"]
    verify = run(
        tiny_kb,
        step("Find", [], "Germany"),
        step("QueryAttr", [0], "population"),
        step("VerifyNum", [1], "80000000", ">"),
    )
    assert verify["answer"] == "yes"
    under = run(
        tiny_kb,
        step("Find", [], "Paris"),
        step("QueryAttrUnderCondition", [0], "population", "point in time", "2010-01-01"),
    )
    assert under["answer"] == ["2200000"]


def test_qualifiers(tiny_kb):
    when = run(
        tiny_kb, step("Find", [], "Paris"), step("QueryAttrQualifier", [0], "population", "2100000", "point in time")
    )
    assert when["answer"] == ["2020-01-01"]
    since = run(
        tiny_kb,
        step("Find", [], "France"),
        step("Find", [], "Paris"),
        step("QueryRelationQualifier", [0, 1], "capital", "start time"),
    )
    assert since["answer"] == ["987"]
    relation = run(tiny_kb, step("Find", [], "Berlin"), step("Find", [], "Germany"), step("QueryRelation", [0, 1]))
    assert relation["answer"] == ["country"]


@pytest.mark.parametrize(
    ("bad_step", "message"),
    [
        (step("Relate", [0], "capitol", "forward"), "no relation 'capitol' (did you mean 'capital'?)"),
        (step("Relate", [0], "capital", "sideways"), "direction must be 'forward' or 'backward'"),
        (step("Fly", [0]), "unknown function 'Fly'"),
        (step("QueryAttr", [0]), "QueryAttr takes 1 inputs (key), got 0"),
        (step("QueryAttr", [5], "area"), "dependency 5 is not an earlier step"),
        (step("FilterNum", [0], "area", "big", ">"), "value 'big' is not a valid quantity"),
        (step("FilterNum", [0], "area", "1", "=>"), "op must be one of '=', '!=', '<', '>'"),
        (step("SelectAmong", [0], "ISO code", "largest"), "SelectAmong compares quantities; 'ISO code' is string"),
        (step("VerifyStr", [0], "FR"), "VerifyStr needs attribute values (QueryAttr) from step 0, not entities"),
        (step("QFilterStr", [0], "start time", "987"), "QFilterStr filters facts: step 0 must be a Relate or Filter"),
        (step("FilterConcept", [0], "town"), "no concept named 'town'"),
        ("Relate", "a step must be an object"),
    ],
)
def test_wrong_step_is_reported_and_later_steps_skipped(tiny_kb, bad_step, message):
    result = run(tiny_kb, step("Find", [], "France"), bad_step, step("QueryName", [1]))
    assert result["answer"] is None
    assert result["steps"][0]["error"] is None
    assert result["steps"][1]["error"].startswith(message), result["steps"][1]["error"]
    assert result["steps"][2] == {
        "index": 2,
        "function": "QueryName",
        "inputs": [],
        "dependencies": [1],
        "output": None,
        "error": "skipped: step 1 failed",
    }
    assert result["error"].startswith("step 1: ")


def test_unknown_entity_and_empty_comparison(tiny_kb):
    missing = run(tiny_kb, step("Find", [], "Pariss"))
    assert missing["steps"][0]["error"] == "no entity named 'Pariss' (did you mean 'Paris'?)"
    nothing = run(tiny_kb, step("Find", [], "France"), step("SelectAmong", [0], "longitude", "largest"))
    assert nothing["steps"][1]["error"] == "SelectAmong: none of the input entities has a 'longitude' value"


def test_bad_programs(tiny_kb):
    assert run(tiny_kb)["error"] == "program must be a non-empty list of steps"
    assert kopl.execute_program(tiny_kb, "Find France")["error"] == "program must be a non-empty list of steps"
    too_long = [step("FindAll")] * (kopl.MAX_PROGRAM_STEPS + 1)
    assert "more than" in kopl.execute_program(tiny_kb, too_long)["error"]


def test_engine_is_cached_and_rebuilt_on_change(tiny_kb, tiny_data):
    engine = kopl.load_engine(tiny_kb)
    assert kopl.load_engine(tiny_kb) is engine
    tiny_data["entities"]["Lyon"]["name"] = "Lugdunum"
    changed = services.import_kb(None, "tiny", tiny_data, replace=True)
    assert kopl.load_engine(changed) is not engine
    assert run(changed, step("Find", [], "Lugdunum"), step("Count", [0]))["answer"] == 1
