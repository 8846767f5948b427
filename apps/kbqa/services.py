"""Knowledge bases in KoPL's JSON format: validate, normalize, import, and run KoPL programs.

KoPL JSON (as in KQA Pro's kb.json):

    {"concepts": {"<id>": {"name": str, "subclassOf": [<concept id>, ...]}},
     "entities": {"<id>": {"name": str, "instanceOf": [<concept id>, ...],
                           "attributes": [{"key": str, "value": <value>, "qualifiers": {<key>: [<value>, ...]}}],
                           "relations": [{"relation": str, "direction": "forward"|"backward",
                                          "object": <entity or concept id>, "qualifiers": {...}}]}}}

    <value> = {"type": "string", "value": str} | {"type": "quantity", "value": number, "unit": str ("1": none)}
            | {"type": "date", "value": "YYYY-MM-DD"} | {"type": "year", "value": int}
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import hashlib
import json
import math
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import kopl.data
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify
from kopl.kopl import KoPLEngine
from kopl.util import ValueClass

from apps.kbqa.models import KnowledgeBase

VALUE_TYPES = ("string", "quantity", "date", "year")
DIRECTIONS = ("forward", "backward")
MAX_ERRORS = 200
MAX_PROGRAM_STEPS = 50
OUTPUT_LIMIT = 50  # entities or values shown per step; counts are always exact


class KBValidationError(ValueError):
    """An import that failed validation; `errors` are path-named messages."""

    def __init__(self, errors: list[str]):
        super().__init__(f"{len(errors)} error(s) in the knowledge base: " + "; ".join(errors[:3]))
        self.errors = errors


# ---------------------------------------------------------------------------------------------
# Validation


def _type_name(value: Any) -> str:
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
        return [f"{path}: expected an object, got {_type_name(value)}"]
    kind = value.get("type")
    if "type" not in value:
        return [f"{path}: missing key 'type'"]
    if kind not in VALUE_TYPES:
        return [f"{path}.type: unknown value type {kind!r} (one of {', '.join(VALUE_TYPES)})"]
    if "value" not in value:
        return [f"{path}: missing key 'value'"]
    raw = value["value"]
    if kind == "string" and not isinstance(raw, str):
        return [f"{path}.value: a string value must be a string, got {_type_name(raw)}"]
    if kind == "quantity":
        errors = []
        if not _is_number(raw):
            errors.append(f"{path}.value: a quantity must be a finite number, got {_type_name(raw)}")
        unit = value.get("unit")
        if "unit" not in value:
            errors.append(f"{path}: missing key 'unit' (use \"1\" for a plain number)")
        elif not isinstance(unit, str) or not unit.strip():
            errors.append(f"{path}.unit: must be a non-empty string")
        return errors
    if kind == "date":
        if not isinstance(raw, str):
            return [f"{path}.value: a date must be a string YYYY-MM-DD, got {_type_name(raw)}"]
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
        return [f"{path}: expected an object of key -> list of values, got {_type_name(qualifiers)}"]
    errors = []
    for qkey, qvalues in qualifiers.items():
        if not isinstance(qvalues, list):
            errors.append(f"{path}.{qkey}: expected a list of values, got {_type_name(qvalues)}")
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
        return [f"{path}.{key}: expected a list of concept ids, got {_type_name(ids)}"]
    errors = []
    for i, cid in enumerate(ids):
        if not isinstance(cid, str) or cid not in concepts:
            errors.append(f"{path}.{key}[{i}]: unknown concept {cid!r}")
    return errors


def validate_kb(data: Any) -> list[str]:
    """Every problem with a KoPL KB, each prefixed by the JSON path of the bad element
    (e.g. `entities.Q42.relations[3].object: unknown entity 'Q999'`). Empty when valid."""
    if not isinstance(data, dict):
        return [f"$: expected an object with 'concepts' and 'entities', got {_type_name(data)}"]
    errors: list[str] = []
    for top in ("concepts", "entities"):
        if top not in data:
            errors.append(f"$: missing key {top!r}")
        elif not isinstance(data[top], dict):
            singular = {"concepts": "concept", "entities": "entity"}[top]
            errors.append(f"{top}: expected an object of id -> {singular}, got {_type_name(data[top])}")
    if errors:
        return errors
    concepts, entities = data["concepts"], data["entities"]

    for cid, concept in concepts.items():
        path = f"concepts.{cid}"
        if not isinstance(concept, dict):
            errors.append(f"{path}: expected an object, got {_type_name(concept)}")
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
            errors.append(f"{path}: expected an object, got {_type_name(entity)}")
            continue
        errors += _check_name(entity, path)
        errors += _check_id_list(entity, "instanceOf", path, concepts)
        for list_key in ("attributes", "relations"):
            if list_key in entity and not isinstance(entity[list_key], list):
                errors.append(f"{path}.{list_key}: expected a list, got {_type_name(entity[list_key])}")
        attributes = entity.get("attributes")
        for i, attr in enumerate(attributes if isinstance(attributes, list) else []):
            apath = f"{path}.attributes[{i}]"
            if not isinstance(attr, dict):
                errors.append(f"{apath}: expected an object, got {_type_name(attr)}")
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
                errors.append(f"{rpath}: expected an object, got {_type_name(rel)}")
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


# ---------------------------------------------------------------------------------------------
# Import and lookup


def check_kb_name(name: str) -> str:
    slug = slugify(name)
    if not slug or slug != name:
        raise ValidationError(f"A KB name must be a slug (lowercase letters, digits, hyphens), e.g. {slug or 'geo'!r}.")
    return slug


@transaction.atomic
def import_kb(
    owner,
    name: str,
    data: Any,
    *,
    title: str = "",
    description: str = "",
    source: str = "",
    replace: bool = False,
) -> KnowledgeBase:
    """Validate, normalize and store a KB. Raises KBValidationError (path-named errors) or
    ValidationError (bad or taken name; `replace=True` overwrites, for the build commands)."""
    check_kb_name(name)
    errors = validate_kb(data)
    if errors:
        raise KBValidationError(errors)
    normalized = normalize_kb(data)
    existing = KnowledgeBase.objects.select_for_update().filter(name=name).first()
    if existing is not None and not replace:
        raise ValidationError(f"A knowledge base named {name!r} already exists.")
    kb = existing or KnowledgeBase(name=name)
    kb.title = title or kb.title or name
    kb.description = description
    kb.source = source
    if existing is None:
        kb.owner = owner
    kb.data = normalized
    kb.stats = kb_stats(normalized)
    kb.content_hash = content_hash(normalized)
    kb.save()
    from apps.kbqa.summary import refresh_summary  # it reads the KB through the question generator

    refresh_summary(kb)  # pages read counts, schema and examples from here, never the JSON
    return kb


def list_kbs():
    """All KBs without their (large) content. KBs are shared reading material for every role."""
    return KnowledgeBase.objects.defer("data").select_related("owner")


def get_kb(name: str) -> KnowledgeBase:
    """A KB with its content; KnowledgeBase.DoesNotExist when absent."""
    return KnowledgeBase.objects.get(name=name)


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


# ---------------------------------------------------------------------------------------------
# The kopl engine

# kopl.data prints progress lines and tqdm bars while indexing. Silencing them by swapping
# sys.stdout/stderr would race with other threads of a web process, so the module's own
# `print` and `tqdm` names are replaced instead (both are looked up as module globals).
kopl.data.print = lambda *args, **kwargs: None
kopl.data.tqdm = lambda iterable, *args, **kwargs: iterable


class AtriumKoPLEngine(KoPLEngine):
    """kopl's engine with two fixes to how it treats concepts.

    kopl stores concepts beside entities, so `FindAll` returned concepts too and a concept's
    member list held its subconcepts (Count(FilterConcept(FindAll, "city")) counted the concept
    "capital city" as a city). Here both hold real entities only.
    """

    def __init__(self, kb_data: dict):
        # kopl's KB mutates what it is given (pops subclassOf/instanceOf, parses values in place).
        # A JSON round trip, not deepcopy: a freshly normalized KB shares one qualifier object
        # between a relation's two ends, and deepcopy would keep it shared (parsed twice).
        super().__init__(json.loads(json.dumps(kb_data)))
        self.entity_ids = list(kb_data["entities"])
        entity_set = set(self.entity_ids)
        self.kb.concept_to_entity = {
            cid: [eid for eid in members if eid in entity_set] for cid, members in self.kb.concept_to_entity.items()
        }
        self.concept_names = {kb_data["concepts"][cid]["name"] for cid in kb_data["concepts"]}
        self.entity_names = {entity["name"] for entity in kb_data["entities"].values()}
        self.relation_names = set(self.kb.relations)
        self.attribute_keys = set(self.kb.attribute_inv_index)
        self.qualifier_keys = {
            qkey
            for entity in kb_data["entities"].values()
            for item in entity["attributes"] + entity["relations"]
            for qkey in item["qualifiers"]
        }

    def FindAll(self):  # noqa: N802 (KoPL's function names)
        return (list(self.entity_ids), None)


_engines: dict[int, tuple[str, AtriumKoPLEngine]] = {}
_engines_lock = threading.Lock()


def load_engine(kb: KnowledgeBase) -> AtriumKoPLEngine:
    """The kopl engine for a KB, built once per process and rebuilt when the content changes.
    Building indexes the whole KB (about a second for a few thousand entities)."""
    cached = _engines.get(kb.pk)
    if cached and cached[0] == kb.content_hash:
        return cached[1]
    with _engines_lock:
        cached = _engines.get(kb.pk)
        if cached and cached[0] == kb.content_hash:
            return cached[1]
        data = kb.data if "data" not in kb.get_deferred_fields() else get_kb(kb.name).data
        engine = AtriumKoPLEngine(data)
        _engines[kb.pk] = (kb.content_hash, engine)
        return engine


# ---------------------------------------------------------------------------------------------
# Running programs


@dataclass(frozen=True)
class FunctionSpec:
    deps: int  # how many earlier steps it reads
    args: tuple[str, ...]  # its textual inputs, by role
    needs: str  # what the dependencies must be: "entities" or "values"
    gives: str  # entities | values | names | name | count | verdict


_COMPARE = ("key", "value", "op")
FUNCTIONS: dict[str, FunctionSpec] = {
    "FindAll": FunctionSpec(0, (), "", "entities"),
    "Find": FunctionSpec(0, ("name",), "", "entities"),
    "FilterConcept": FunctionSpec(1, ("concept",), "entities", "entities"),
    "FilterStr": FunctionSpec(1, ("key", "value"), "entities", "entities"),
    "FilterNum": FunctionSpec(1, _COMPARE, "entities", "entities"),
    "FilterYear": FunctionSpec(1, _COMPARE, "entities", "entities"),
    "FilterDate": FunctionSpec(1, _COMPARE, "entities", "entities"),
    "QFilterStr": FunctionSpec(1, ("qkey", "qvalue"), "facts", "entities"),
    "QFilterNum": FunctionSpec(1, ("qkey", "qvalue", "op"), "facts", "entities"),
    "QFilterYear": FunctionSpec(1, ("qkey", "qvalue", "op"), "facts", "entities"),
    "QFilterDate": FunctionSpec(1, ("qkey", "qvalue", "op"), "facts", "entities"),
    "Relate": FunctionSpec(1, ("relation", "direction"), "entities", "entities"),
    "And": FunctionSpec(2, (), "entities", "entities"),
    "Or": FunctionSpec(2, (), "entities", "entities"),
    "QueryName": FunctionSpec(1, (), "entities", "names"),
    "What": FunctionSpec(1, (), "entities", "names"),  # KQA Pro's alias of QueryName
    "Count": FunctionSpec(1, (), "entities", "count"),
    "QueryAttr": FunctionSpec(1, ("key",), "entities", "values"),
    "QueryAttrUnderCondition": FunctionSpec(1, ("key", "qkey", "qvalue"), "entities", "values"),
    "QueryRelation": FunctionSpec(2, (), "entities", "names"),
    "SelectBetween": FunctionSpec(2, ("key", "op"), "entities", "name"),
    "SelectAmong": FunctionSpec(1, ("key", "op"), "entities", "names"),
    "VerifyStr": FunctionSpec(1, ("value",), "values", "verdict"),
    "VerifyNum": FunctionSpec(1, ("value", "op"), "values", "verdict"),
    "VerifyYear": FunctionSpec(1, ("value", "op"), "values", "verdict"),
    "VerifyDate": FunctionSpec(1, ("value", "op"), "values", "verdict"),
    "QueryAttrQualifier": FunctionSpec(1, ("key", "value", "qkey"), "entities", "values"),
    "QueryRelationQualifier": FunctionSpec(2, ("relation", "qkey"), "entities", "values"),
}
COMPARISON_OPS = ("=", "!=", "<", ">")
OPS = {"SelectBetween": ("less", "greater"), "SelectAmong": ("smallest", "largest")}
# The value type each typed function compares with.
FUNCTION_VALUE_TYPE = {"Str": "string", "Num": "quantity", "Year": "year", "Date": "date"}


class StepError(Exception):
    """A wrong function, argument or dependency at one step; the message is for the user."""


def format_value(value: ValueClass) -> str:
    """A KoPL value as text. kopl's own str() truncates negative non-integers (-3.5 -> "-3")."""
    if value.type == "quantity":
        number = value.value
        text = str(int(number)) if float(number).is_integer() else repr(float(number))
        return text if value.unit == "1" else f"{text} {value.unit}"
    if value.type == "date":
        return value.value.isoformat()
    return str(value.value)


def _value_json(value: ValueClass) -> dict:
    out = {"type": value.type, "text": format_value(value)}
    if value.type == "quantity":
        out["value"] = value.value
        out["unit"] = value.unit
    elif value.type == "date":
        out["value"] = value.value.isoformat()
    else:
        out["value"] = value.value
    return out


def _suggest(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _typed(function: str) -> str | None:
    for suffix, kind in FUNCTION_VALUE_TYPE.items():
        if function.endswith(suffix) and function != "FilterConcept":
            return kind
    return None


def _check_arguments(engine: AtriumKoPLEngine, function: str, spec: FunctionSpec, inputs: list[str]) -> None:
    args = dict(zip(spec.args, inputs, strict=True))
    if "name" in args and args["name"] not in engine.entity_names:
        raise StepError(f"no entity named {args['name']!r}{_suggest(args['name'], engine.entity_names)}")
    if "concept" in args and args["concept"] not in engine.concept_names:
        raise StepError(f"no concept named {args['concept']!r}{_suggest(args['concept'], engine.concept_names)}")
    if "relation" in args and args["relation"] not in engine.relation_names:
        raise StepError(f"no relation {args['relation']!r}{_suggest(args['relation'], engine.relation_names)}")
    if "direction" in args and args["direction"] not in DIRECTIONS:
        raise StepError(f"direction must be 'forward' or 'backward', got {args['direction']!r}")
    if "key" in args and args["key"] not in engine.attribute_keys:
        raise StepError(f"no attribute {args['key']!r}{_suggest(args['key'], engine.attribute_keys)}")
    if "qkey" in args and args["qkey"] not in engine.qualifier_keys:
        raise StepError(f"no qualifier {args['qkey']!r}{_suggest(args['qkey'], engine.qualifier_keys)}")
    if "op" in args:
        allowed = OPS.get(function, COMPARISON_OPS)
        if args["op"] not in allowed:
            raise StepError(f"op must be one of {', '.join(repr(o) for o in allowed)}, got {args['op']!r}")
    if function in OPS and engine.kb.key_type.get(args["key"]) != "quantity":
        # kopl compares quantities only; on other keys it fails deep inside with an IndexError.
        raise StepError(f"{function} compares quantities; {args['key']!r} is {engine.kb.key_type.get(args['key'])}")
    # Values are parsed now so a malformed number or date is reported as such.
    for role, key_role in (("value", "key"), ("qvalue", "qkey")):
        if role not in args:
            continue
        kind = _typed(function) or engine.kb.key_type.get(args.get(key_role, ""), "string")
        try:
            engine._parse_key_value(None, args[role], kind)
        except (ValueError, IndexError) as exc:
            raise StepError(f"{role} {args[role]!r} is not a valid {kind} ({exc})") from None


def _summarize(engine: AtriumKoPLEngine, kind: str, result: Any) -> dict:
    if kind == "entities":
        entity_ids, facts = result
        names = engine.kb.entities
        unique = sorted(set(entity_ids), key=lambda eid: (names[eid]["name"], eid))
        return {
            "kind": "entities",
            "count": len(unique),
            "entities": [{"id": eid, "name": names[eid]["name"]} for eid in unique[:OUTPUT_LIMIT]],
            "truncated": len(unique) > OUTPUT_LIMIT,
            "facts": len(facts) if facts is not None else None,
        }
    if kind == "values":
        return {
            "kind": "values",
            "count": len(result),
            "values": [_value_json(v) for v in result[:OUTPUT_LIMIT]],
            "truncated": len(result) > OUTPUT_LIMIT,
        }
    if kind == "names":
        names = sorted(result)
        return {
            "kind": "names",
            "count": len(names),
            "values": names[:OUTPUT_LIMIT],
            "truncated": len(names) > OUTPUT_LIMIT,
        }
    return {"kind": kind, "value": result}


def _answer(engine: AtriumKoPLEngine, kind: str, result: Any) -> Any:
    if kind == "entities":
        return sorted({engine.kb.entities[eid]["name"] for eid in result[0]})
    if kind == "values":
        return [format_value(v) for v in result]
    if kind == "names":
        return sorted(result)
    return result


def _check_step(step: Any, index: int) -> tuple[str, list[int], list[str]]:
    if not isinstance(step, dict):
        raise StepError(f"a step must be an object with function, dependencies, inputs; got {_type_name(step)}")
    function = step.get("function")
    if not isinstance(function, str) or function not in FUNCTIONS:
        raise StepError(f"unknown function {function!r}{_suggest(str(function), set(FUNCTIONS))}")
    spec = FUNCTIONS[function]
    dependencies = step.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in dependencies
    ):
        raise StepError("dependencies must be a list of step indexes")
    if len(dependencies) != spec.deps:
        raise StepError(f"{function} takes {spec.deps} dependencies, got {len(dependencies)}")
    for dep in dependencies:
        if not 0 <= dep < index:
            raise StepError(f"dependency {dep} is not an earlier step")
    inputs = step.get("inputs", [])
    if not isinstance(inputs, list) or not all(isinstance(x, str | int | float) for x in inputs):
        raise StepError("inputs must be a list of strings")
    inputs = [str(x) for x in inputs]
    if len(inputs) != len(spec.args):
        expected = ", ".join(spec.args) or "no inputs"
        raise StepError(f"{function} takes {len(spec.args)} inputs ({expected}), got {len(inputs)}")
    return function, dependencies, inputs


def execute_step(
    engine: AtriumKoPLEngine, function: str, inputs: list[str], dependencies: list[tuple[int, str, Any]]
) -> tuple[str, Any]:
    """One checked KoPL step. `dependencies` holds (step index, kind, raw result) per input step.
    Returns (kind, raw result); raises StepError with a readable message."""
    spec = FUNCTIONS[function]
    for dep, kind, result in dependencies:
        if spec.needs == "values" and kind != "values":
            raise StepError(f"{function} needs attribute values (QueryAttr) from step {dep}, not {kind}")
        if spec.needs in ("entities", "facts") and kind != "entities":
            raise StepError(f"{function} needs an entity set from step {dep}, not {kind}")
        if spec.needs == "facts" and result[1] is None:
            raise StepError(f"{function} filters facts: step {dep} must be a Relate or Filter step")
    _check_arguments(engine, function, spec, inputs)
    method = getattr(engine, "QueryName" if function == "What" else function)
    try:
        result = method(*[result for _dep, _kind, result in dependencies], *inputs)
    except IndexError:
        if function not in OPS:
            raise StepError(f"{function} failed: nothing to work on") from None
        # kopl picks the most common unit of an empty candidate list.
        raise StepError(f"{function}: none of the input entities has a {inputs[0]!r} value") from None
    except Exception as exc:  # kopl's own failures become step errors, not tracebacks
        raise StepError(f"{function} failed: {type(exc).__name__}: {exc}") from None
    return spec.gives, result


def answer_of(engine: AtriumKoPLEngine, kind: str, result: Any) -> Any:
    """The user-facing answer of a final step's raw result."""
    return _answer(engine, kind, result)


def execute_program(kb: KnowledgeBase, program: Any) -> dict:
    """Run a KoPL program (a list of {"function", "dependencies", "inputs"}) step by step.

    Returns {"steps": [{"index", "function", "inputs", "dependencies", "output", "error"}],
    "answer", "error"}. A wrong function, argument or dependency stops the run at that step
    with a readable error; the later steps are listed with error "skipped".
    """
    return run_program(load_engine(kb), program)


def run_program(engine: AtriumKoPLEngine, program: Any) -> dict:
    """execute_program on an engine already at hand (the parser and the question generator)."""
    if not isinstance(program, list) or not program:
        return {"steps": [], "answer": None, "error": "program must be a non-empty list of steps"}
    if len(program) > MAX_PROGRAM_STEPS:
        return {"steps": [], "answer": None, "error": f"program has more than {MAX_PROGRAM_STEPS} steps"}
    results: list[tuple[str, Any]] = []  # (kind, raw kopl result) per step
    steps: list[dict] = []
    failed: int | None = None
    for index, raw in enumerate(program):
        step = {
            "index": index,
            "function": raw.get("function") if isinstance(raw, dict) else None,
            "inputs": raw.get("inputs", []) if isinstance(raw, dict) else [],
            "dependencies": raw.get("dependencies", []) if isinstance(raw, dict) else [],
            "output": None,
            "error": None,
        }
        steps.append(step)
        if failed is not None:
            step["error"] = f"skipped: step {failed} failed"
            continue
        try:
            function, dependencies, inputs = _check_step(raw, index)
            kind, result = execute_step(engine, function, inputs, [(dep, *results[dep]) for dep in dependencies])
            results.append((kind, result))
            step["output"] = _summarize(engine, kind, result)
        except StepError as exc:
            step["error"] = str(exc)
            failed = index
            results.append(("error", None))
    if failed is not None:
        return {"steps": steps, "answer": None, "error": f"step {failed}: {steps[failed]['error']}"}
    kind, result = results[-1]
    return {"steps": steps, "answer": _answer(engine, kind, result), "error": None}
