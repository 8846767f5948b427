"""The argument parser's candidates for each step of a sketch, with ontology-guided pruning: a
relation must leave the entities in hand, an attribute must exist on them, a concept must contain
some of them, a qualifier must be on the facts in hand. Pruned candidates keep their reason, so
the page can show what was cut and why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apps.kbqa import cues
from apps.kbqa.kopl import FUNCTIONS, StepError
from apps.kbqa.ontology import Ontology, quantity_text
from apps.kbqa.reading import (
    GREATER_CUES,
    LARGEST_CUES,
    LESS_CUES,
    SMALLEST_CUES,
    QuestionContext,
    has_cue,
    numbers_in,
    read_as_concept,
)

PER_ROLE = 4  # candidates per argument role that enter the beam
SHOWN_PRUNED = 3

# ---------------------------------------------------------------------------------------------
# Argument candidates, with ontology-guided pruning


@dataclass
class Candidate:
    inputs: list[str]
    score: float
    label: str


@dataclass
class StepCandidates:
    """What the argument parser considered for one step (shown in the UI)."""

    kept: list[Candidate]
    pruned: list[tuple[Candidate, str]]
    before: int
    after: int

    def as_json(self) -> dict:
        return {
            "candidates": [{"label": c.label, "inputs": c.inputs, "score": round(c.score, 3)} for c in self.kept],
            "pruned": [
                {"label": c.label, "inputs": c.inputs, "score": round(c.score, 3), "reason": reason}
                for c, reason in self.pruned
            ],
            "before": self.before,
            "after": self.after,
        }


def _entities(result: tuple | None) -> list[str]:
    return list(dict.fromkeys(result[0])) if result else []


def _split(scored: list[tuple[Candidate, str | None]], prune: bool) -> StepCandidates:
    """Candidates with a pruning reason are dropped when pruning is on (and still shown)."""
    scored.sort(key=lambda item: -item[0].score)
    before = len(scored)
    if not prune:
        return StepCandidates([c for c, _ in scored[:PER_ROLE]], [], before, before)
    kept = [c for c, reason in scored if reason is None]
    pruned = [(c, reason) for c, reason in scored if reason is not None]
    return StepCandidates(kept[:PER_ROLE], pruned[:SHOWN_PRUNED], before, len(kept))


def _keys_on(onto: Ontology, entity_ids: list[str]) -> dict[str, set[str]]:
    """Attribute keys present on the entities, with their value types."""
    index = onto.engine.kb.attribute_inv_index
    present: dict[str, set[str]] = {}
    ids = set(entity_ids)
    # Every entity in hand, not a sample: after FindAll the holders of a key (the 200 former
    # countries with a dissolution date) may all lie past the first few thousand entities.
    for key in onto.attribute_keys:
        if not index.get(key, {}).keys().isdisjoint(ids):  # in C, over the smaller of the two
            present.setdefault(key, set()).add(onto.key_type.get(key, "string"))
    return present


def key_candidates(
    ctx: QuestionContext, entity_ids: list[str], want_type: str | tuple[str, ...] | None, prune: bool
) -> StepCandidates:
    present = _keys_on(ctx.onto, entity_ids)
    wanted = (want_type,) if isinstance(want_type, str) else want_type
    scored = []
    for key in ctx.onto.attribute_keys:
        reason = None
        if key not in present:
            reason = "no such attribute on the entities in hand"
        elif wanted and ctx.onto.key_type.get(key) not in wanted:
            reason = f"holds {ctx.onto.key_type.get(key)} values, not {' or '.join(wanted)}"
        scored.append((Candidate([key], ctx.similarity(key), key), reason))
    return _split(scored, prune)


def relation_candidates(
    ctx: QuestionContext, entity_ids: list[str], prune: bool, back: tuple[str, str] | None = None
) -> StepCandidates:
    """Relations leaving the entities in hand; `back` is the hop that would return the way the
    previous Relate came (director forward, then director backward), which asks nothing."""
    present: set[tuple[str, str]] = set()
    for eid in entity_ids[:3000]:
        for rel in ctx.onto.engine.kb.entities[eid]["relations"]:
            present.add((rel["relation"], rel["direction"]))
    lowered = ctx.masked.casefold()
    concepts = set(ctx.onto.concepts.values())
    scored = []
    for relation in ctx.onto.relations:
        similarity = ctx.similarity(relation)
        if relation in concepts and read_as_concept(ctx.masked, relation):
            # "Which countries border China?": "countries" names the class asked for, which
            # says nothing for the relation "country" that shares its label.
            similarity = min(similarity, 0.5)
        elif class_word_only(ctx, relation, concepts):
            # "How many cities does Brazil have?": "cities" names the class counted; the relation
            # "largest city" shares that word only, and "largest" is not asked.
            similarity = min(similarity, 0.5)
        after = re.search(rf"{re.escape(relation.casefold())}\s+of\b", lowered) is not None
        for direction in ("forward", "backward"):
            # "the capital of X" reads forward from X; "which country has capital X" backward.
            cue = 0.02 if (direction == "forward") == after else 0.0
            reason = None if (relation, direction) in present else "no such relation leaves the entities in hand"
            if (relation, direction) == back:
                reason = "goes back the way the previous step came"
            scored.append((Candidate([relation, direction], similarity + cue, f"{relation} ({direction})"), reason))
    return _split(scored, prune)


def class_word_only(ctx: QuestionContext, relation: str, concepts: set[str]) -> bool:
    """Whether a relation's label holds a concept's label that the question reads as a class, and
    none of the label's other words is in the question."""
    words = set(re.findall(r"\w+", ctx.masked.casefold()))
    label = relation.casefold()
    for concept in concepts:
        inside = concept.casefold()
        if inside != label and re.search(rf"(?<!\w){re.escape(inside)}(?!\w)", label):
            rest = set(re.findall(r"\w+", label.replace(inside, " ")))
            if rest and not rest & words and read_as_concept(ctx.masked, concept):
                return True
    return False


def concept_candidates(ctx: QuestionContext, entity_ids: list[str], prune: bool) -> StepCandidates:
    current = set(entity_ids)
    scored = []
    for cid, name in ctx.onto.concepts.items():
        reason = None if ctx.onto.members[cid] & current else "contains none of the entities in hand"
        scored.append((Candidate([name], ctx.similarity(name), name), reason))
    return _split(scored, prune)


def mention_candidates(ctx: QuestionContext, used: set[str], order: int) -> StepCandidates:
    scored = []
    for index, mention in enumerate(ctx.mentions):
        if mention.entity_name in used:
            continue
        # The k-th Find of a sketch most likely names the k-th entity mentioned.
        bonus = 1.0 if index == order else 0.9
        scored.append((Candidate([mention.entity_name], mention.score * bonus, mention.entity_name), None))
    return _split(scored, prune=False)


def string_value_candidates(ctx: QuestionContext, key: str) -> list[Candidate]:
    # Once per question and key, not per beam: a key can hold thousands of values.
    if key not in ctx.string_values:
        lowered = ctx.masked.casefold()  # not inside an entity's name
        found = [
            v
            for v in ctx.onto.string_values(key)
            if v and v.casefold() in lowered and re.search(rf"(?<!\w){re.escape(v.casefold())}(?!\w)", lowered)
        ]
        found.sort(key=len, reverse=True)
        ctx.string_values[key] = found[:PER_ROLE]
    return [Candidate([v], 1.0, v) for v in ctx.string_values[key]]


def number_value_candidates(ctx: QuestionContext, key: str) -> list[Candidate]:
    unit = ctx.onto.key_unit.get(key, "1")
    return [Candidate([quantity_text(n, unit)], 1.0, quantity_text(n, unit)) for n in numbers_in(ctx)[:PER_ROLE]]


def comparison_op(ctx: QuestionContext) -> list[Candidate]:
    if has_cue(ctx.masked, LESS_CUES):
        return [Candidate(["<"], 1.0, "<"), Candidate([">"], 0.3, ">")]
    if has_cue(ctx.masked, GREATER_CUES):
        return [Candidate([">"], 1.0, ">"), Candidate(["<"], 0.3, "<")]
    return [Candidate(["="], 0.8, "="), Candidate([">"], 0.3, ">"), Candidate(["<"], 0.3, "<")]


def extreme_op(ctx: QuestionContext, pair: tuple[str, str], cues: tuple[tuple[str, ...], tuple[str, ...]]):
    high, low = pair
    if has_cue(ctx.masked, cues[1]):
        return [Candidate([low], 1.0, low), Candidate([high], 0.3, high)]
    return [Candidate([high], 1.0 if has_cue(ctx.masked, cues[0]) else 0.6, high), Candidate([low], 0.3, low)]


def _combine(*roles: list[Candidate]) -> list[Candidate]:
    combos = [Candidate([], 1.0, "")]
    for role in roles:
        combos = [
            Candidate(a.inputs + b.inputs, a.score * b.score, (a.label + " · " + b.label).strip(" ·"))
            for a in combos
            for b in role
        ]
    combos.sort(key=lambda c: -c.score)
    return combos[: PER_ROLE * 2]


# ---------------------------------------------------------------------------------------------
# Beam search over one sketch


@dataclass
class Beam:
    score: float
    steps: list[dict]
    results: list[tuple[str, Any]]
    used_names: set[str]


def step_candidates(
    ctx: QuestionContext, function: str, deps: list[int], beam: Beam, find_order: int, prune: bool
) -> StepCandidates:
    inputs = [beam.results[d][1] for d in deps]
    entities = _entities(inputs[0]) if inputs and beam.results[deps[0]][0] == "entities" else []
    if function == "Find":
        return mention_candidates(ctx, beam.used_names, find_order)
    if function == "Relate":
        previous = beam.steps[deps[0]] if deps else None
        back = None
        if previous and previous["function"] == "Relate":
            relation, direction = previous["inputs"]
            back = (relation, "backward" if direction == "forward" else "forward")
        return relation_candidates(ctx, entities, prune, back)
    if function == "FilterConcept":
        return concept_candidates(ctx, entities, prune)
    if function in ("QueryAttr",):
        return key_candidates(ctx, entities, None, prune)
    if function in ("SelectAmong", "SelectBetween"):
        if function == "SelectBetween":
            entities = entities + _entities(inputs[1])
        keys = key_candidates(ctx, entities, "quantity", prune)
        pair = ("largest", "smallest") if function == "SelectAmong" else ("greater", "less")
        cues = (LARGEST_CUES, SMALLEST_CUES) if function == "SelectAmong" else (GREATER_CUES, LESS_CUES)
        keys.kept = _combine(keys.kept, extreme_op(ctx, pair, cues))
        return keys
    if function == "FilterNum":
        keys = key_candidates(ctx, entities, "quantity", prune)
        keys.kept = [
            combo
            for key in keys.kept
            for combo in _combine([key], number_value_candidates(ctx, key.inputs[0]), comparison_op(ctx))
        ]
        return keys
    if function == "FilterStr":
        keys = key_candidates(ctx, entities, "string", prune)
        keys.kept = [
            combo for key in keys.kept for combo in _combine([key], string_value_candidates(ctx, key.inputs[0]))
        ]
        return keys
    if function in ("FilterYear", "FilterDate"):
        keys = key_candidates(ctx, entities, ("year", "date"), prune)
        keys.kept = [combo for key in keys.kept for combo in _combine([key], year_value_candidates(ctx))]
        return keys
    if function in ("VerifyYear", "VerifyDate"):
        kept = year_value_candidates(ctx)
        return StepCandidates(kept, [], len(kept), len(kept))
    if function in ("QFilterYear", "QFilterDate"):
        return qualifier_year_candidates(ctx, beam.results[deps[0]][1], prune)
    if function in ("VerifyNum", "VerifyStr"):
        key = beam.steps[deps[0]]["inputs"][0] if beam.steps[deps[0]]["function"] == "QueryAttr" else ""
        if function == "VerifyNum":
            kept = _combine(number_value_candidates(ctx, key), comparison_op(ctx))
        else:
            kept = string_value_candidates(ctx, key)
        return StepCandidates(kept, [], len(kept), len(kept))
    if function == "QueryRelationQualifier":
        return relation_qualifier_candidates(ctx, entities, _entities(inputs[1]), prune)
    if FUNCTIONS[function].args:
        raise StepError(f"the parser does not fill arguments of {function}")
    return StepCandidates([Candidate([], 1.0, "")], [], 1, 1)


def year_value_candidates(ctx: QuestionContext) -> list[Candidate]:
    """(year, op) pairs from the years written in the question and the words before them."""
    found = cues.years_in(ctx.masked)
    return [Candidate([str(year), cues.year_op(ctx.masked, year)], 1.0, f"{year}") for year in found[:PER_ROLE]]


def qualifier_year_candidates(ctx: QuestionContext, result: tuple | None, prune: bool) -> StepCandidates:
    """Qualifier keys holding years or dates on the facts in hand, with the question's year."""
    facts = result[1] if result else None
    present = {qkey for fact in (facts or [])[:3000] for qkey in fact.get("qualifiers", {})}
    scored = []
    for qkey in ctx.onto.qualifier_keys:
        reason = None if (not prune or qkey in present or facts is None) else "no such qualifier on the facts in hand"
        scored.append((Candidate([qkey], ctx.similarity(qkey), qkey), reason))
    split = _split(scored, prune)
    split.kept = [combo for key in split.kept for combo in _combine([key], year_value_candidates(ctx))]
    return split


def relation_qualifier_candidates(
    ctx: QuestionContext, subjects: list[str], objects: list[str], prune: bool
) -> StepCandidates:
    targets = set(objects)
    facts = [
        rel
        for eid in subjects[:200]
        for rel in ctx.onto.engine.kb.entities[eid]["relations"]
        if rel["object"] in targets and rel["direction"] == "forward"
    ]
    linking = {rel["relation"] for rel in facts}
    qualifiers = {(rel["relation"], q) for rel in facts for q in rel["qualifiers"]}
    scored = []
    for relation in ctx.onto.relations:
        for qkey in ctx.onto.qualifier_keys:
            reason = None
            if relation not in linking:
                reason = "the two entities are not linked by this relation"
            elif (relation, qkey) not in qualifiers:
                reason = "that fact has no such qualifier"
            score = ctx.similarity(relation) * ctx.similarity(qkey)
            scored.append((Candidate([relation, qkey], score, f"{relation} · {qkey}"), reason))
    return _split(scored, prune)
