"""The shipped KBs: sizes, validity, and answers checked by hand against the source data."""

import json

import pytest

from apps.kbqa import kb_format, kopl, services
from apps.kbqa.builders import DATA_DIR
from tests.kbqa.conftest import step


@pytest.mark.parametrize("name", ["geo", "elements"])
def test_shipped_json_is_valid_and_big_enough(name):
    data = json.loads((DATA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert kb_format.validate_kb(data) == []
    stats = kb_format.kb_stats(kb_format.normalize_kb(data))
    assert stats["entities"] >= 500
    assert stats["concepts"] >= 10
    assert stats["relations"] >= 15
    assert stats["attributes"] >= 15


def run(kb, *steps):
    result = kopl.execute_program(kb, list(steps))
    assert result["error"] is None, result["error"]
    return result["answer"]


def test_geo_capital_and_multi_hop(geo_kb):
    assert run(
        geo_kb, step("Find", [], "France"), step("Relate", [0], "capital", "forward"), step("QueryName", [1])
    ) == ["Paris"]
    # The continent of the country whose capital is Nairobi.
    assert run(
        geo_kb,
        step("Find", [], "Nairobi"),
        step("Relate", [0], "capital of", "forward"),
        step("Relate", [1], "continent", "forward"),
        step("QueryName", [2]),
    ) == ["Africa"]


def test_geo_count_and_comparisons(geo_kb):
    # GeoNames lists nine neighbours of Germany.
    neighbours = run(
        geo_kb, step("Find", [], "Germany"), step("Relate", [0], "shares border with", "forward"), step("Count", [1])
    )
    assert neighbours == 9
    assert (
        run(
            geo_kb,
            step("Find", [], "France"),
            step("Find", [], "Germany"),
            step("SelectBetween", [0, 1], "population", "greater"),
        )
        == "Germany"
    )
    assert run(
        geo_kb,
        step("Find", [], "Europe"),
        step("Relate", [0], "continent", "backward"),
        step("FilterConcept", [1], "country"),
        step("SelectAmong", [2], "area", "largest"),
    ) == ["Russia"]


def test_geo_attributes_verify_and_qualifiers(geo_kb):
    assert run(geo_kb, step("Find", [], "Japan"), step("QueryAttr", [0], "ISO 3166-1 alpha-3 code")) == ["JPN"]
    assert (
        run(
            geo_kb,
            step("Find", [], "Japan"),
            step("QueryAttr", [0], "population"),
            step("VerifyNum", [1], "100000000", ">"),
        )
        == "yes"
    )
    # Paris is two hours ahead of UTC in July (summer time).
    assert run(
        geo_kb,
        step("Find", [], "Europe/Paris"),
        step("QueryAttrQualifier", [0], "UTC offset", "2 hour", "point in time"),
    ) == ["2026-07-15"]
    assert run(
        geo_kb,
        step("Find", [], "France"),
        step("Find", [], "French"),
        step("QueryRelationQualifier", [0, 1], "language used", "rank"),
    ) == ["1"]


def test_elements_kb_answers(db):
    data = json.loads((DATA_DIR / "elements.json").read_text(encoding="utf-8"))
    kb = services.import_kb(None, "elements", data)
    assert run(
        kb, step("Find", [], "carbon"), step("Relate", [0], "most abundant isotope", "forward"), step("QueryName", [1])
    ) == ["carbon-12"]
    assert run(kb, step("Find", [], "oxygen"), step("QueryAttr", [0], "atomic number")) == ["8"]
    assert (
        run(
            kb,
            step("FindAll"),
            step("FilterConcept", [0], "noble gas"),
            step("Count", [1]),
        )
        == 7
    )
