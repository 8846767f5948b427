import copy

import pytest

from apps.kbqa import kb_format, kopl, services


def test_tiny_kb_is_valid(tiny_data):
    assert kb_format.validate_kb(tiny_data) == []


def broken(data: dict, change) -> dict:
    data = copy.deepcopy(data)
    change(data)
    return data


CASES = [
    ("not an object", lambda d: d.clear() or d.update({"x": 1}), "$: missing key 'concepts'"),
    ("entities a list", lambda d: d.update(entities=[]), "entities: expected an object of id -> entity, got array"),
    (
        "dangling relation target",
        lambda d: d["entities"]["FR"]["relations"][1].update(object="Q999"),
        "entities.FR.relations[1].object: unknown entity 'Q999'",
    ),
    (
        "unknown concept in instanceOf",
        lambda d: d["entities"]["Lyon"]["instanceOf"].append("town"),
        "entities.Lyon.instanceOf[1]: unknown concept 'town'",
    ),
    (
        "unknown parent concept",
        lambda d: d["concepts"]["city"]["subclassOf"].append("place"),
        "concepts.city.subclassOf[1]: unknown concept 'place'",
    ),
    ("missing name", lambda d: d["entities"]["DE"].pop("name"), "entities.DE: missing key 'name'"),
    (
        "bad direction",
        lambda d: d["entities"]["DE"]["relations"][0].update(direction="up"),
        "entities.DE.relations[0].direction: must be 'forward' or 'backward', got 'up'",
    ),
    (
        "quantity without unit",
        lambda d: d["entities"]["FR"]["attributes"][0]["value"].pop("unit"),
        "entities.FR.attributes[0].value: missing key 'unit'",
    ),
    (
        "quantity that is a string",
        lambda d: d["entities"]["FR"]["attributes"][0]["value"].update(value="many"),
        "entities.FR.attributes[0].value.value: a quantity must be a finite number, got string",
    ),
    (
        "bad date",
        lambda d: d["entities"]["DE"]["attributes"][2]["value"].update(value="23 May 1949"),
        "entities.DE.attributes[2].value.value: not a date (YYYY-MM-DD): '23 May 1949'",
    ),
    (
        "year not an integer",
        lambda d: d["entities"]["FR"]["attributes"][2]["value"].update(value="843 AD"),
        "entities.FR.attributes[2].value.value: a year must be an integer, got '843 AD'",
    ),
    (
        "unknown value type",
        lambda d: d["entities"]["FR"]["attributes"][3]["value"].update(type="text"),
        "entities.FR.attributes[3].value.type: unknown value type 'text'",
    ),
    (
        "bad qualifier value",
        lambda d: d["entities"]["Paris"]["attributes"][0]["qualifiers"]["point in time"][0].update(type="time"),
        "entities.Paris.attributes[0].qualifiers.point in time[0].type: unknown value type 'time'",
    ),
    (
        "mixed attribute types",
        lambda d: d["entities"]["DE"]["attributes"][3].update(value={"type": "quantity", "value": 276, "unit": "1"}),
        "entities.DE.attributes[3].value.type: attribute 'ISO code' is quantity here but string at entities.FR",
    ),
    (
        "entity id shared with a concept",
        lambda d: d["entities"].update(city={"name": "City"}),
        "entities.city: id is also a concept id",
    ),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_errors_name_the_path(tiny_data, change, expected):
    errors = kb_format.validate_kb(broken(tiny_data, change))
    assert any(error.startswith(expected) for error in errors), errors


def test_every_error_is_reported(tiny_data):
    def two_faults(d):
        d["entities"]["FR"]["relations"][0]["object"] = "Q1"
        d["entities"]["Lyon"]["attributes"][0]["value"]["unit"] = ""

    errors = kb_format.validate_kb(broken(tiny_data, two_faults))
    assert errors == [
        "entities.FR.relations[0].object: unknown entity 'Q1'",
        "entities.Lyon.attributes[0].value.unit: must be a non-empty string",
    ]


def test_non_object_kb():
    assert kb_format.validate_kb([1, 2]) == ["$: expected an object with 'concepts' and 'entities', got array"]


def test_normalize_adds_backward_relations(tiny_data):
    normalized = kb_format.normalize_kb(tiny_data)
    france = normalized["entities"]["FR"]["relations"]
    assert {"relation": "country", "direction": "backward", "object": "Paris", "qualifiers": {}} in france
    assert {"relation": "country", "direction": "backward", "object": "Lyon", "qualifiers": {}} in france
    paris = normalized["entities"]["Paris"]["relations"]
    # the qualifier travels with the fact
    assert {
        "relation": "capital",
        "direction": "backward",
        "object": "FR",
        "qualifiers": {"start time": [{"type": "year", "value": 987}]},
    } in paris
    assert kb_format.normalize_kb(normalized) == normalized  # idempotent
    assert "relations" not in tiny_data["concepts"]["city"]  # the input is left alone
    assert len(tiny_data["entities"]["FR"]["relations"]) == 2


def test_normalize_fills_optional_keys():
    data = {"concepts": {"c": {"name": "c"}}, "entities": {"e": {"name": "e"}, "f": {"name": "f", "instanceOf": ["c"]}}}
    assert kb_format.validate_kb(data) == []
    normalized = kb_format.normalize_kb(data)
    assert normalized["entities"]["e"] == {"name": "e", "instanceOf": [], "attributes": [], "relations": []}
    assert normalized["concepts"]["c"]["subclassOf"] == []


def test_import_rejects_invalid_and_reports_stats(db, tiny_data):
    bad = broken(tiny_data, lambda d: d["entities"]["FR"]["relations"][1].update(object="Q999"))
    with pytest.raises(kb_format.KBValidationError) as info:
        services.import_kb(None, "bad", bad)
    assert info.value.errors == ["entities.FR.relations[1].object: unknown entity 'Q999'"]
    kb = services.import_kb(None, "tiny", tiny_data)
    assert kb.stats == {
        "entities": 5,
        "concepts": 4,
        "relations": 3,
        "attributes": 5,
        "relation_facts": 6,
        "attribute_facts": 15,
        "qualifier_facts": 3,
    }


def test_an_engine_builds_from_a_freshly_normalized_kb(tiny_data):
    """normalize_kb gives a relation's two ends one qualifier object; kopl parses values in place,
    so the engine must not see it shared (a fresh `make up` failed to load its demo KBs)."""
    normalized = kb_format.normalize_kb(tiny_data)
    engine = kopl.AtriumKoPLEngine(normalized)
    assert "FR" in engine.entity_ids
    assert normalized == kb_format.normalize_kb(tiny_data)  # the KB itself is left alone
