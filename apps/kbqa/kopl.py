"""The KoPL engine: kopl's engine with Atrium's fixes, one per KB and process, and programs run
step by step with readable errors (what the parser, the question generator and the pages run)."""

from __future__ import annotations

import difflib
import json
import threading
from dataclasses import dataclass
from typing import Any

import kopl.data
from kopl.kopl import KoPLEngine
from kopl.util import ValueClass

from apps.kbqa.kb_format import DIRECTIONS, type_name
from apps.kbqa.models import KnowledgeBase

MAX_PROGRAM_STEPS = 50
OUTPUT_LIMIT = 50  # entities or values shown per step; counts are always exact

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
        data = kb.data if "data" not in kb.get_deferred_fields() else KnowledgeBase.objects.get(pk=kb.pk).data
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
        raise StepError(f"a step must be an object with function, dependencies, inputs; got {type_name(step)}")
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
