"""Knowledge bases in KoPL's JSON format: validate, normalize, count, describe.

KoPL JSON (as in KQA Pro's kb.json):

    {"concepts": {"<id>": {"name": str, "subclassOf": [<concept id>, ...]}},
     "entities": {"<id>": {"name": str, "instanceOf": [<concept id>, ...],
                           "attributes": [{"key": str, "value": <value>, "qualifiers": {<key>: [<value>, ...]}}],
                           "relations": [{"relation": str, "direction": "forward"|"backward",
                                          "object": <entity or concept id>, "qualifiers": {...}}]}}}

    <value> = {"type": "string", "value": str} | {"type": "quantity", "value": number, "unit": str ("1": none)}
            | {"type": "date", "value": "YYYY-MM-DD"} | {"type": "year", "value": int}

Pure functions over the JSON; storing a KB is apps.kbqa.services.import_kb, running programs
on it is apps.kbqa.kopl.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
from collections import Counter
from typing import Any

from apps.kbqa.models import KnowledgeBase

VALUE_TYPES = ("string", "quantity", "date", "year")
DIRECTIONS = ("forward", "backward")
MAX_ERRORS = 200


class KBValidationError(ValueError):
    """An import that failed validation; `errors` are path-named messages."""

    def __init__(self, errors: list[str]):
        super().__init__(f"{len(errors)} error(s) in the knowledge base: " + "; ".join(errors[:3]))
        self.errors = errors


# ---------------------------------------------------------------------------------------------
# Validation


def type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_date(text: str) -> dt.date:
    """KoPL reads dates as Y-M-D (or Y/M/D) with a non-negative year."""
    parts = text.replace("/", "-").split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}")
    return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))


def _value_errors(value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {type_name(value)}"]
    kind = value.get("type")
    if "type" not in value:
        return [f"{path}: missing key 'type'"]
    if kind not in VALUE_TYPES:
        return [f"{path}.type: unknown value type {kind!r} (one of {', '.join(VALUE_TYPES)})"]
    if "value" not in value:
        return [f"{path}: missing key 'value'"]
    raw = value["value"]
    if kind == "string" and not isinstance(raw, str):
        return [f"{path}.value: a string value must be a string, got {type_name(raw)}"]
    if kind == "quantity":
        errors = []
        if not _is_number(raw):
            errors.append(f"{path}.value: a quantity must be a finite number, got {type_name(raw)}")
        unit = value.get("unit")
        if "unit" not in value:
            errors.append(f"{path}: missing key 'unit' (use \"1\" for a plain number)")
        elif not isinstance(unit, str) or not unit.strip():
            errors.append(f"{path}.unit: must be a non-empty string")
        return errors
    if kind == "date":
        if not isinstance(raw, str):
            return [f"{path}.value: a date must be a string YYYY-MM-DD, got {type_name(raw)}"]
        try:
            _parse_date(raw)
        except ValueError as exc:
            return [f"{path}.value: {exc}"]
    if kind == "year":
        ok = (isinstance(raw, int) and not isinstance(raw, bool)) or (
            isinstance(raw, str) and raw.lstrip("-").isdigit()
        )
        if not ok:
            return [f"{path}.value: a year must be an integer, got {raw!r}"]
    return []


def _qualifier_errors(qualifiers: Any, path: str) -> list[str]:
    if not isinstance(qualifiers, dict):
        return [f"{path}: expected an object of key -> list of values, got {type_name(qualifiers)}"]
    errors = []
    for qkey, qvalues in qualifiers.items():
        if not isinstance(qvalues, list):
            errors.append(f"{path}.{qkey}: expected a list of values, got {type_name(qvalues)}")
            continue
        for i, qvalue in enumerate(qvalues):
            errors += _value_errors(qvalue, f"{path}.{qkey}[{i}]")
    return errors


def _check_name(item: dict, path: str) -> list[str]:
    if "name" not in item:
        return [f"{path}: missing key 'name'"]
    if not isinstance(item["name"], str) or not item["name"].strip():
        return [f"{path}.name: must be a non-empty string"]
    return []


def _check_id_list(item: dict, key: str, path: str, concepts: dict) -> list[str]:
    if key not in item:
        return []  # optional; normalize_kb fills []
    ids = item[key]
    if not isinstance(ids, list):
        return [f"{path}.{key}: expected a list of concept ids, got {type_name(ids)}"]
    errors = []
    for i, cid in enumerate(ids):
        if not isinstance(cid, str) or cid not in concepts:
            errors.append(f"{path}.{key}[{i}]: unknown concept {cid!r}")
    return errors


def validate_kb(data: Any) -> list[str]:
    """Every problem with a KoPL KB, each prefixed by the JSON path of the bad element
    (e.g. `entities.Q42.relations[3].object: unknown entity 'Q999'`). Empty when valid."""
    if not isinstance(data, dict):
        return [f"$: expected an object with 'concepts' and 'entities', got {type_name(data)}"]
    errors: list[str] = []
    for top in ("concepts", "entities"):
        if top not in data:
            errors.append(f"$: missing key {top!r}")
        elif not isinstance(data[top], dict):
            singular = {"concepts": "concept", "entities": "entity"}[top]
            errors.append(f"{top}: expected an object of id -> {singular}, got {type_name(data[top])}")
    if errors:
        return errors
    concepts, entities = data["concepts"], data["entities"]

    for cid, concept in concepts.items():
        path = f"concepts.{cid}"
        if not isinstance(concept, dict):
            errors.append(f"{path}: expected an object, got {type_name(concept)}")
            continue
        errors += _check_name(concept, path)
        errors += _check_id_list(concept, "subclassOf", path, concepts)

    # KoPL keeps concepts and entities in one id space; a shared id would silently merge them.
    for eid in entities.keys() & concepts.keys():
        errors.append(f"entities.{eid}: id is also a concept id")

    key_types: dict[str, tuple[str, str]] = {}  # attribute key -> (type family, first path)
    for eid, entity in entities.items():
        path = f"entities.{eid}"
        if not isinstance(entity, dict):
            errors.append(f"{path}: expected an object, got {type_name(entity)}")
            continue
        errors += _check_name(entity, path)
        errors += _check_id_list(entity, "instanceOf", path, concepts)
        for list_key in ("attributes", "relations"):
            if list_key in entity and not isinstance(entity[list_key], list):
                errors.append(f"{path}.{list_key}: expected a list, got {type_name(entity[list_key])}")
        attributes = entity.get("attributes")
        for i, attr in enumerate(attributes if isinstance(attributes, list) else []):
            apath = f"{path}.attributes[{i}]"
            if not isinstance(attr, dict):
                errors.append(f"{apath}: expected an object, got {type_name(attr)}")
                continue
            if "key" not in attr:
                errors.append(f"{apath}: missing key 'key'")
            elif not isinstance(attr["key"], str) or not attr["key"].strip():
                errors.append(f"{apath}.key: must be a non-empty string")
            if "value" not in attr:
                errors.append(f"{apath}: missing key 'value'")
            else:
                value_errors = _value_errors(attr["value"], f"{apath}.value")
                errors += value_errors
                # KoPL keeps one type per key (the last one seen wins), so mixed types break filters.
                if not value_errors and isinstance(attr.get("key"), str):
                    family = "time" if attr["value"]["type"] in ("date", "year") else attr["value"]["type"]
                    seen = key_types.setdefault(attr["key"], (family, apath))
                    if seen[0] != family:
                        errors.append(
                            f"{apath}.value.type: attribute {attr['key']!r} is {attr['value']['type']} here "
                            f"but {seen[0]} at {seen[1]} (one type per key)"
                        )
            if "qualifiers" in attr:
                errors += _qualifier_errors(attr["qualifiers"], f"{apath}.qualifiers")
        relations = entity.get("relations")
        for i, rel in enumerate(relations if isinstance(relations, list) else []):
            rpath = f"{path}.relations[{i}]"
            if not isinstance(rel, dict):
                errors.append(f"{rpath}: expected an object, got {type_name(rel)}")
                continue
            for key in ("relation", "direction", "object"):
                if key not in rel:
                    errors.append(f"{rpath}: missing key {key!r}")
            if "relation" in rel and (not isinstance(rel["relation"], str) or not rel["relation"].strip()):
                errors.append(f"{rpath}.relation: must be a non-empty string")
            if "direction" in rel and rel["direction"] not in DIRECTIONS:
                errors.append(f"{rpath}.direction: must be 'forward' or 'backward', got {rel['direction']!r}")
            if "object" in rel:
                obj = rel["object"]
                if not isinstance(obj, str) or (obj not in entities and obj not in concepts):
                    errors.append(f"{rpath}.object: unknown entity {obj!r}")
            if "qualifiers" in rel:
                errors += _qualifier_errors(rel["qualifiers"], f"{rpath}.qualifiers")
        if len(errors) > MAX_ERRORS:
            break
    if len(errors) > MAX_ERRORS:
        return errors[:MAX_ERRORS] + [f"... and more errors (showing the first {MAX_ERRORS})"]
    return errors


# ---------------------------------------------------------------------------------------------
# Normalization and stats


def _relation_key(relation: str, direction: str, obj: str, qualifiers: dict) -> tuple:
    return (relation, direction, obj, json.dumps(qualifiers, sort_keys=True))


def normalize_kb(data: dict) -> dict:
    """A copy of a valid KB in the shape the kopl engine needs.

    Fills optional keys (subclassOf, instanceOf, attributes, relations, qualifiers) and lists
    every relation fact on both ends: the kopl engine answers a backward `Relate` only from
    "backward" entries stored on the object, so a KB that lists a relation on its subject alone
    loses half its edges. A forward fact on the subject gets a backward one on the object, and a
    backward fact gets its forward one. Relations to concepts are left alone: the engine
    mirrors those itself. Idempotent.
    """
    out = copy.deepcopy(data)
    for concept in out["concepts"].values():
        concept.setdefault("subclassOf", [])
    entities = out["entities"]
    for entity in entities.values():
        entity.setdefault("instanceOf", [])
        entity.setdefault("attributes", [])
        entity.setdefault("relations", [])
        for item in entity["attributes"] + entity["relations"]:
            item.setdefault("qualifiers", {})
    seen = {
        eid: {_relation_key(r["relation"], r["direction"], r["object"], r["qualifiers"]) for r in entity["relations"]}
        for eid, entity in entities.items()
    }
    for eid, entity in entities.items():
        for rel in list(entity["relations"]):
            obj = rel["object"]
            if obj not in entities:
                continue  # a concept
            mirror = "backward" if rel["direction"] == "forward" else "forward"
            key = _relation_key(rel["relation"], mirror, eid, rel["qualifiers"])
            if key not in seen[obj]:
                seen[obj].add(key)
                entities[obj]["relations"].append(
                    {
                        "relation": rel["relation"],
                        "direction": mirror,
                        "object": eid,
                        "qualifiers": copy.deepcopy(rel["qualifiers"]),
                    }
                )
    return out


def kb_stats(data: dict) -> dict:
    """Counts for the list page and the KB's `stats` field (data must be normalized)."""
    relations, attributes = set(), set()
    relation_facts = attribute_facts = qualifier_facts = 0
    for entity in data["entities"].values():
        for attr in entity["attributes"]:
            attributes.add(attr["key"])
            attribute_facts += 1
            qualifier_facts += sum(len(v) for v in attr["qualifiers"].values())
        for rel in entity["relations"]:
            relations.add(rel["relation"])
            if rel["direction"] == "forward":  # each fact is stored twice; count it once
                relation_facts += 1
                qualifier_facts += sum(len(v) for v in rel["qualifiers"].values())
    return {
        "entities": len(data["entities"]),
        "concepts": len(data["concepts"]),
        "relations": len(relations),
        "attributes": len(attributes),
        "relation_facts": relation_facts,
        "attribute_facts": attribute_facts,
        "qualifier_facts": qualifier_facts,
    }


def content_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def kb_schema(kb: KnowledgeBase) -> dict:
    """What the browse page shows: concepts with entity counts (direct and with subclasses),
    relation labels with fact counts, attribute keys with types, units and counts."""
    concepts, entities = kb.data["concepts"], kb.data["entities"]
    direct = Counter(cid for entity in entities.values() for cid in entity["instanceOf"])
    children: dict[str, list[str]] = {cid: [] for cid in concepts}
    for cid, concept in concepts.items():
        for parent in concept["subclassOf"]:
            children[parent].append(cid)

    def with_subclasses(cid: str, seen: set[str]) -> set[str]:
        seen.add(cid)
        for child in children[cid]:
            if child not in seen:
                with_subclasses(child, seen)
        return seen

    concept_rows = []
    for cid, concept in concepts.items():
        subtree = with_subclasses(cid, set())
        concept_rows.append(
            {
                "id": cid,
                "name": concept["name"],
                "parents": [concepts[p]["name"] for p in concept["subclassOf"]],
                "direct": direct[cid],
                "total": sum(1 for e in entities.values() if subtree.intersection(e["instanceOf"])),
            }
        )
    relations: Counter = Counter()
    qualifiers_by_relation: dict[str, set] = {}
    attributes: dict[str, dict] = {}
    for entity in entities.values():
        for rel in entity["relations"]:
            if rel["direction"] == "forward":
                relations[rel["relation"]] += 1
                qualifiers_by_relation.setdefault(rel["relation"], set()).update(rel["qualifiers"])
        for attr in entity["attributes"]:
            row = attributes.setdefault(
                attr["key"], {"key": attr["key"], "type": attr["value"]["type"], "units": set(), "count": 0, "q": set()}
            )
            row["count"] += 1
            row["q"].update(attr["qualifiers"])
            if attr["value"]["type"] == "quantity":
                row["units"].add(attr["value"]["unit"])
    return {
        "concepts": sorted(concept_rows, key=lambda r: (-r["total"], r["name"])),
        "relations": [
            {"name": name, "count": count, "qualifiers": sorted(qualifiers_by_relation[name])}
            for name, count in sorted(relations.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "attributes": [
            {
                **{k: v for k, v in row.items() if k not in ("units", "q")},
                "units": sorted(row["units"] - {"1"}),
                "qualifiers": sorted(row["q"]),
            }
            for row in sorted(attributes.values(), key=lambda r: (-r["count"], r["key"]))
        ],
    }
