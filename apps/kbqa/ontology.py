"""What the question generator, the parser and the draft need to know about a KB, read off its
kopl engine (`Ontology`: names, concepts and members, relations, keys with types and units), and
programs in KQA Pro's form: sketches, steps, and running them for an answer."""

from __future__ import annotations

import math
import random
import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from apps.kbqa.kopl import AtriumKoPLEngine, StepError, answer_of, execute_step, load_engine
from apps.kbqa.models import KnowledgeBase

MAX_ANSWERS = 20  # a "which ..." question whose answer lists more entities than this reads badly


@dataclass
class Example:
    question: str
    program: list[dict]
    answer: Any
    template: str

    @property
    def sketch(self) -> str:
        return sketch_of(self.program)

    def as_json(self) -> dict:
        return {
            "question": self.question,
            "program": self.program,
            "answer": self.answer,
            "template": self.template,
            "sketch": self.sketch,
        }


def sketch_of(program: list[dict]) -> str:
    """A program without its arguments: functions with their dependency structure,
    e.g. "Find() Relate(0) FilterConcept(1) Count(2)"."""
    return " ".join(f"{step['function']}({','.join(str(d) for d in step['dependencies'])})" for step in program)


def parse_sketch(sketch: str) -> list[tuple[str, list[int]]]:
    steps = []
    for token in sketch.split():
        name, _, deps = token.partition("(")
        deps = deps.rstrip(")")
        steps.append((name, [int(d) for d in deps.split(",") if d]))
    return steps


def step(function: str, dependencies: list[int], inputs: list[Any]) -> dict:
    return {"function": function, "dependencies": dependencies, "inputs": [str(x) for x in inputs]}


def format_number(value: float) -> str:
    """A readable threshold: integers as such, other numbers with three significant digits."""
    if float(value).is_integer():
        return str(int(value))
    digits = max(0, 2 - int(math.floor(math.log10(abs(value))))) if value else 0
    return f"{value:.{digits}f}"


def round_threshold(value: float) -> float:
    """A round number near `value` (two significant digits), as a person would ask with."""
    if value == 0:
        return 0.0
    magnitude = 10 ** (int(math.floor(math.log10(abs(value)))) - 1)
    return round(value / magnitude) * magnitude


def quantity_text(value: float, unit: str) -> str:
    number = format_number(value)
    return number if unit == "1" else f"{number} {unit}"


class Ontology:
    """What the templates and the argument parser need to know about a KB, read off the kopl engine."""

    def __init__(self, engine: AtriumKoPLEngine) -> None:
        kb = engine.kb
        self.engine = engine
        self.entity_ids: list[str] = engine.entity_ids
        self.name = {eid: kb.entities[eid]["name"] for eid in self.entity_ids}
        name_counts = Counter(self.name.values())
        self.unique_name_ids = [eid for eid in self.entity_ids if name_counts[self.name[eid]] == 1]
        self.unique_ids = set(self.unique_name_ids)
        self.concepts = {cid: kb.entities[cid]["name"] for cid in kb.concepts}
        self.members = {cid: set(kb.concept_to_entity.get(cid, ())) for cid in kb.concepts}
        self.relations = sorted(engine.relation_names)
        self.attribute_keys = sorted(engine.attribute_keys)
        self.key_type: dict[str, str] = dict(kb.key_type)
        self.qualifier_keys = sorted(engine.qualifier_keys)
        units: dict[str, Counter] = defaultdict(Counter)
        self.entities_with_key: dict[str, list[str]] = defaultdict(list)
        for eid in self.entity_ids:
            for attr in kb.entities[eid]["attributes"]:
                value = attr["value"]
                if value.type == "quantity":
                    units[attr["key"]][value.unit] += 1
                self.entities_with_key[attr["key"]].append(eid)
        self.key_unit = {key: counter.most_common(1)[0][0] for key, counter in units.items()}

    def names_casefold(self) -> list[tuple[str, str]]:
        if not hasattr(self, "_names_casefold"):
            self._names_casefold = sorted({(n, n.casefold()) for n in self.name.values()})
        return self._names_casefold

    def names_with_word(self, word: str) -> set[str]:
        if not hasattr(self, "_word_index"):
            index: dict[str, set[str]] = defaultdict(set)
            for name in self.name.values():
                for token in re.findall(r"\w+", name.casefold()):
                    index[token].add(name)
            self._word_index = index
        return self._word_index.get(word, set())

    def string_values(self, key: str) -> list[str]:
        """The distinct string values a key takes in the KB."""
        if not hasattr(self, "_string_values"):
            self._string_values: dict[str, list[str]] = {}
        if key not in self._string_values:
            values = self.engine.kb.key_values.get(key, [])
            self._string_values[key] = sorted({str(v.value) for v in values if v.type == "string"})
        return self._string_values[key]

    def direct_concepts(self, eid: str) -> list[str]:
        return self.engine.kb.get_direct_concepts(eid)

    def concept_of(self, eid: str, rng: random.Random) -> str | None:
        direct = self.direct_concepts(eid)
        return self.concepts[rng.choice(direct)] if direct else None

    def attributes(self, eid: str) -> list[dict]:
        return self.engine.kb.entities[eid]["attributes"]

    def relation_facts(self, eid: str) -> list[dict]:
        return [r for r in self.engine.kb.entities[eid]["relations"] if r["object"] in self.name]

    def quantity(self, eid: str, key: str) -> float | None:
        """The entity's value for a quantity key in the key's usual unit, if it has exactly one."""
        values = [
            a["value"].value
            for a in self.attributes(eid)
            if a["key"] == key and a["value"].type == "quantity" and a["value"].unit == self.key_unit.get(key)
        ]
        return values[0] if len(values) == 1 else None


_ontologies: dict[int, Ontology] = {}
_ontologies_lock = threading.Lock()


def load_ontology(kb: KnowledgeBase) -> Ontology:
    """The ontology view of a KB's engine, built once per engine (per process and content)."""
    engine = load_engine(kb)
    with _ontologies_lock:
        onto = _ontologies.get(kb.pk)
        if onto is None or onto.engine is not engine:  # new content means a new engine
            onto = Ontology(engine)
            _ontologies[kb.pk] = onto
        return onto


def run(onto: Ontology, program: list[dict], strict: bool = True) -> Any:
    """The program's answer, or None when a step fails. `strict` (for generating pairs) also
    rejects programs whose entity sets run empty or whose answer lists too many names."""
    results: list[tuple[str, Any]] = []
    try:
        for item in program:
            deps = [(d, *results[d]) for d in item["dependencies"]]
            kind, result = execute_step(onto.engine, item["function"], item["inputs"], deps)
            if strict and kind == "entities" and not result[0]:
                return None
            results.append((kind, result))
    except (StepError, IndexError, KeyError):
        return None
    if not results:
        return None
    answer = answer_of(onto.engine, *results[-1])
    if strict and isinstance(answer, list) and not 0 < len(answer) <= MAX_ANSWERS:
        return None
    return answer
