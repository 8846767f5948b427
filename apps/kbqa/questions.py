"""Question-program pairs generated from a KB's ontology, in the style of KQA Pro.

Each template samples what the KB actually holds (an entity and one of its relations, a
concept and a quantity its members carry, ...), builds the KoPL program, runs it, and keeps
the pair only when the answer is sensible. Several wordings per template give paraphrase
variety. Nothing here is specific to one KB: templates read the ontology (`Ontology`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.kbqa.ontology import Example, Ontology, quantity_text, round_threshold, run, step

# ---------------------------------------------------------------------------------------------
# Templates: each returns (wordings, program) from random KB content, or None to retry.

GREATER_WORDS = ["greater than", "more than", "larger than", "higher than", "above"]
LESS_WORDS = ["less than", "smaller than", "lower than", "below", "under"]
LARGEST_WORDS = ["the largest", "the highest", "the greatest", "the biggest", "the most"]
SMALLEST_WORDS = ["the smallest", "the lowest", "the least", "the fewest"]

Sample = tuple[list[str], list[dict]]


def _entity_with(onto: Ontology, rng: random.Random, want: Callable[[str], bool], tries: int = 60) -> str | None:
    for _ in range(tries):
        eid = rng.choice(onto.unique_name_ids)
        if want(eid):
            return eid
    return None


def t_attribute(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: bool(onto.attributes(e)))
    if eid is None:
        return None
    key = rng.choice(onto.attributes(eid))["key"]
    e = onto.name[eid]
    return (
        [
            f"What is the {key} of {e}?",
            f"Tell me the {key} of {e}.",
            f"What's {e}'s {key}?",
            f"Give the {key} for {e}.",
            f"Which {key} does {e} have?",
        ],
        [step("Find", [], [e]), step("QueryAttr", [0], [key])],
    )


def t_relation(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: any(r["direction"] == "forward" for r in onto.relation_facts(e)))
    if eid is None:
        return None
    fact = rng.choice([r for r in onto.relation_facts(eid) if r["direction"] == "forward"])
    e, r = onto.name[eid], fact["relation"]
    return (
        [f"What is the {r} of {e}?", f"Name the {r} of {e}.", f"Who or what is {e}'s {r}?", f"{e} has which {r}?"],
        [step("Find", [], [e]), step("Relate", [0], [r, "forward"]), step("QueryName", [1], [])],
    )


def t_relation_concept(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: bool(onto.relation_facts(e)))
    if eid is None:
        return None
    fact = rng.choice(onto.relation_facts(eid))
    concept = onto.concept_of(fact["object"], rng)
    if concept is None:
        return None
    e, r, c = onto.name[eid], fact["relation"], concept
    if fact["direction"] == "forward":
        wordings = [f"Which {c} is the {r} of {e}?", f"What {c} is {e}'s {r}?", f"Name the {c} that is the {r} of {e}."]
    else:
        wordings = [
            f"Which {c} has {r} {e}?",
            f"Which {c} has {e} as its {r}?",
            f"List the {c} whose {r} is {e}.",
            f"What {c} has the {r} {e}?",
        ]
    program = [
        step("Find", [], [e]),
        step("Relate", [0], [r, fact["direction"]]),
        step("FilterConcept", [1], [c]),
        step("QueryName", [2], []),
    ]
    return wordings, program


def t_two_hop_attribute(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(
        onto,
        rng,
        lambda e: any(r["direction"] == "forward" and onto.attributes(r["object"]) for r in onto.relation_facts(e)),
    )
    if eid is None:
        return None
    fact = rng.choice(
        [r for r in onto.relation_facts(eid) if r["direction"] == "forward" and onto.attributes(r["object"])]
    )
    key = rng.choice(onto.attributes(fact["object"]))["key"]
    e, r = onto.name[eid], fact["relation"]
    return (
        [f"What is the {key} of the {r} of {e}?", f"What's the {key} of {e}'s {r}?", f"Give the {key} of {e}'s {r}."],
        [step("Find", [], [e]), step("Relate", [0], [r, "forward"]), step("QueryAttr", [1], [key])],
    )


def t_two_hop_relation(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(
        onto,
        rng,
        lambda e: any(
            r["direction"] == "forward"
            and any(
                s["direction"] == "forward" and s["relation"] != r["relation"] for s in onto.relation_facts(r["object"])
            )
            for r in onto.relation_facts(e)
        ),
    )
    if eid is None:
        return None
    first = rng.choice(
        [
            r
            for r in onto.relation_facts(eid)
            if r["direction"] == "forward"
            and any(
                s["direction"] == "forward" and s["relation"] != r["relation"] for s in onto.relation_facts(r["object"])
            )
        ]
    )
    second = rng.choice(
        [
            s
            for s in onto.relation_facts(first["object"])
            if s["direction"] == "forward" and s["relation"] != first["relation"]
        ]
    )
    e, r1, r2 = onto.name[eid], first["relation"], second["relation"]
    return (
        [f"What is the {r2} of the {r1} of {e}?", f"Name the {r2} of {e}'s {r1}."],
        [
            step("Find", [], [e]),
            step("Relate", [0], [r1, "forward"]),
            step("Relate", [1], [r2, "forward"]),
            step("QueryName", [2], []),
        ],
    )


def t_count_concept(onto: Ontology, rng: random.Random) -> Sample | None:
    cid = rng.choice([c for c, members in onto.members.items() if members])
    c = onto.concepts[cid]
    return (
        [f"How many {c} are there?", f"What is the number of {c}?", f"Count the {c}.", f"How many {c} does it know?"],
        [step("FindAll", [], []), step("FilterConcept", [0], [c]), step("Count", [1], [])],
    )


def t_count_relation(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: any(r["direction"] == "backward" for r in onto.relation_facts(e)))
    if eid is None:
        return None
    fact = rng.choice([r for r in onto.relation_facts(eid) if r["direction"] == "backward"])
    concept = onto.concept_of(fact["object"], rng)
    if concept is None:
        return None
    e, r, c = onto.name[eid], fact["relation"], concept
    return (
        [
            f"How many {c} have {r} {e}?",
            f"How many {c} are there in {e}?",
            f"How many {c} have {e} as their {r}?",
            f"Count the {c} whose {r} is {e}.",
        ],
        [
            step("Find", [], [e]),
            step("Relate", [0], [r, "backward"]),
            step("FilterConcept", [1], [c]),
            step("Count", [2], []),
        ],
    )


def _concept_and_quantity(onto: Ontology, rng: random.Random) -> tuple[str, str, list[float]] | None:
    """A concept and a quantity key that enough of its members carry, with their values."""
    for _ in range(30):
        cid = rng.choice([c for c, members in onto.members.items() if len(members) >= 3])
        sample = rng.sample(sorted(onto.members[cid]), min(40, len(onto.members[cid])))
        keys = Counter(
            a["key"]
            for eid in sample
            for a in onto.attributes(eid)
            if a["value"].type == "quantity" and a["key"] in onto.key_unit
        )
        keys = [k for k, n in keys.items() if n >= 3]
        if not keys:
            continue
        key = rng.choice(keys)
        values = [v for eid in sample if (v := onto.quantity(eid, key)) is not None]
        if len(set(values)) >= 3:
            return onto.concepts[cid], key, values
    return None


def t_count_filter_number(onto: Ontology, rng: random.Random) -> Sample | None:
    found = _concept_and_quantity(onto, rng)
    if found is None:
        return None
    c, key, values = found
    threshold = round_threshold(sorted(values)[len(values) // 2])
    op = rng.choice([">", "<"])
    word = rng.choice(GREATER_WORDS if op == ">" else LESS_WORDS)
    v = quantity_text(threshold, onto.key_unit[key])
    return (
        [
            f"How many {c} have a {key} {word} {v}?",
            f"How many {c} have {key} {word} {v}?",
            f"Count the {c} with a {key} {word} {v}.",
        ],
        [
            step("FindAll", [], []),
            step("FilterNum", [0], [key, v, op]),
            step("FilterConcept", [1], [c]),
            step("Count", [2], []),
        ],
    )


def t_select_among(onto: Ontology, rng: random.Random) -> Sample | None:
    found = _concept_and_quantity(onto, rng)
    if found is None:
        return None
    c, key, _values = found
    op = rng.choice(["largest", "smallest"])
    word = rng.choice(LARGEST_WORDS if op == "largest" else SMALLEST_WORDS)
    return (
        [f"Which {c} has {word} {key}?", f"What {c} has {word} {key}?", f"Among all {c}, which one has {word} {key}?"],
        [step("FindAll", [], []), step("FilterConcept", [0], [c]), step("SelectAmong", [1], [key, op])],
    )


def t_select_among_related(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: sum(r["direction"] == "backward" for r in onto.relation_facts(e)) >= 3)
    if eid is None:
        return None
    relation = Counter(r["relation"] for r in onto.relation_facts(eid) if r["direction"] == "backward").most_common(1)
    r = relation[0][0]
    objects = [f["object"] for f in onto.relation_facts(eid) if f["relation"] == r and f["direction"] == "backward"]
    concept = onto.concept_of(rng.choice(objects), rng)
    keys = Counter(
        a["key"]
        for o in objects
        for a in onto.attributes(o)
        if a["value"].type == "quantity" and a["key"] in onto.key_unit
    )
    keys = [k for k, n in keys.items() if n >= 2]
    if concept is None or not keys:
        return None
    key = rng.choice(keys)
    op = rng.choice(["largest", "smallest"])
    word = rng.choice(LARGEST_WORDS if op == "largest" else SMALLEST_WORDS)
    e, c = onto.name[eid], concept
    return (
        [
            f"Among the {c} with {r} {e}, which has {word} {key}?",
            f"Which {c} in {e} has {word} {key}?",
            f"Which {c} whose {r} is {e} has {word} {key}?",
        ],
        [
            step("Find", [], [e]),
            step("Relate", [0], [r, "backward"]),
            step("FilterConcept", [1], [c]),
            step("SelectAmong", [2], [key, op]),
        ],
    )


def t_select_between(onto: Ontology, rng: random.Random) -> Sample | None:
    found = _concept_and_quantity(onto, rng)
    if found is None:
        return None
    _c, key, _values = found
    holders = [eid for eid in onto.entities_with_key[key] if eid in onto.unique_ids]
    if len(holders) < 2:
        return None
    first, second = rng.sample(holders, 2)
    a, b = onto.name[first], onto.name[second]
    op = rng.choice(["greater", "less"])
    word = rng.choice(["larger", "greater", "higher", "bigger"] if op == "greater" else ["smaller", "lower", "less"])
    return (
        [
            f"Which has a {word} {key}, {a} or {b}?",
            f"Between {a} and {b}, which has the {word} {key}?",
            f"Does {a} or {b} have a {word} {key}?",
        ],
        [step("Find", [], [a]), step("Find", [], [b]), step("SelectBetween", [0, 1], [key, op])],
    )


def t_verify_number(onto: Ontology, rng: random.Random) -> Sample | None:
    key = rng.choice(list(onto.key_unit))
    holders = [eid for eid in onto.entities_with_key[key][:2000] if onto.quantity(eid, key) is not None]
    holders = [eid for eid in holders if eid in onto.unique_ids]
    if not holders:
        return None
    eid = rng.choice(holders)
    value = onto.quantity(eid, key)
    threshold = round_threshold(value * rng.choice([0.5, 0.8, 1.25, 2.0])) if value else rng.choice([1.0, 10.0])
    op = rng.choice([">", "<"])
    word = rng.choice(GREATER_WORDS if op == ">" else LESS_WORDS)
    e, v = onto.name[eid], quantity_text(threshold, onto.key_unit[key])
    return (
        [f"Is the {key} of {e} {word} {v}?", f"Does {e} have a {key} {word} {v}?", f"Is {e}'s {key} {word} {v}?"],
        [step("Find", [], [e]), step("QueryAttr", [0], [key]), step("VerifyNum", [1], [v, op])],
    )


def t_verify_string(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: any(a["value"].type == "string" for a in onto.attributes(e)))
    if eid is None:
        return None
    key = rng.choice([a["key"] for a in onto.attributes(eid) if a["value"].type == "string"])
    own = [a["value"].value for a in onto.attributes(eid) if a["key"] == key]
    if rng.random() < 0.5:
        value = rng.choice(own)
    else:  # another entity's value for the same key: the answer is "no"
        other = rng.choice(onto.entities_with_key[key])
        value = next(a["value"].value for a in onto.attributes(other) if a["key"] == key)
    e = onto.name[eid]
    return (
        [f"Is the {key} of {e} {value}?", f"Is {value} the {key} of {e}?", f"Does {e} have the {key} {value}?"],
        [step("Find", [], [e]), step("QueryAttr", [0], [key]), step("VerifyStr", [1], [value])],
    )


def t_filter_string(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: any(a["value"].type == "string" for a in onto.attributes(e)))
    if eid is None:
        return None
    attr = rng.choice([a for a in onto.attributes(eid) if a["value"].type == "string"])
    concept = onto.concept_of(eid, rng)
    if concept is None:
        return None
    key, value, c = attr["key"], attr["value"].value, concept
    return (
        [f"Which {c} has the {key} {value}?", f"What {c} has {key} {value}?", f"Name the {c} whose {key} is {value}."],
        [
            step("FindAll", [], []),
            step("FilterStr", [0], [key, value]),
            step("FilterConcept", [1], [c]),
            step("QueryName", [2], []),
        ],
    )


def t_query_relation(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: any(r["object"] in onto.unique_ids for r in onto.relation_facts(e)))
    if eid is None:
        return None
    fact = rng.choice([r for r in onto.relation_facts(eid) if r["object"] in onto.unique_ids])
    a, b = onto.name[eid], onto.name[fact["object"]]
    return (
        [
            f"How is {a} related to {b}?",
            f"What is the relation from {a} to {b}?",
            f"What relation does {a} have to {b}?",
        ],
        [step("Find", [], [a]), step("Find", [], [b]), step("QueryRelation", [0, 1], [])],
    )


def t_and_relations(onto: Ontology, rng: random.Random) -> Sample | None:
    """Entities related to two given entities: an intersection of two backward hops."""
    eid = _entity_with(onto, rng, lambda e: len({r["relation"] for r in onto.relation_facts(e)}) >= 2)
    if eid is None:
        return None
    facts = onto.relation_facts(eid)
    first = rng.choice(facts)
    others = [f for f in facts if f["relation"] != first["relation"] and f["object"] in onto.unique_ids]
    if not others or first["object"] not in onto.unique_ids:
        return None
    second = rng.choice(others)
    concept = onto.concept_of(eid, rng)
    if concept is None:
        return None
    flip = {"forward": "backward", "backward": "forward"}
    # eid --r1--> o1 means o1 --r1 (flipped direction)--> eid.
    e1, e2 = onto.name[first["object"]], onto.name[second["object"]]
    r1, r2, c = first["relation"], second["relation"], concept
    return (
        [f"Which {c} has {r1} {e1} and {r2} {e2}?", f"What {c} has both {r1} {e1} and {r2} {e2}?"],
        [
            step("Find", [], [e1]),
            step("Relate", [0], [r1, flip[first["direction"]]]),
            step("Find", [], [e2]),
            step("Relate", [2], [r2, flip[second["direction"]]]),
            step("And", [1, 3], []),
            step("FilterConcept", [4], [c]),
            step("QueryName", [5], []),
        ],
    )


def t_relation_qualifier(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(
        onto, rng, lambda e: any(r["qualifiers"] and r["direction"] == "forward" for r in onto.relation_facts(e))
    )
    if eid is None:
        return None
    fact = rng.choice([r for r in onto.relation_facts(eid) if r["qualifiers"] and r["direction"] == "forward"])
    if fact["object"] not in onto.unique_ids:
        return None
    qkey = rng.choice(sorted(fact["qualifiers"]))
    a, b, r = onto.name[eid], onto.name[fact["object"]], fact["relation"]
    return (
        [f"What is the {qkey} of the {r} of {a} that is {b}?", f"For {a} and its {r} {b}, what is the {qkey}?"],
        [step("Find", [], [a]), step("Find", [], [b]), step("QueryRelationQualifier", [0, 1], [r, qkey])],
    )


TEMPLATES: dict[str, Callable[[Ontology, random.Random], Sample | None]] = {
    "attribute": t_attribute,
    "relation": t_relation,
    "relation_concept": t_relation_concept,
    "two_hop_attribute": t_two_hop_attribute,
    "two_hop_relation": t_two_hop_relation,
    "count_concept": t_count_concept,
    "count_relation": t_count_relation,
    "count_filter_number": t_count_filter_number,
    "select_among": t_select_among,
    "select_among_related": t_select_among_related,
    "select_between": t_select_between,
    "verify_number": t_verify_number,
    "verify_string": t_verify_string,
    "filter_string": t_filter_string,
    "query_relation": t_query_relation,
    "and_relations": t_and_relations,
    "relation_qualifier": t_relation_qualifier,
}


@dataclass
class GenerationReport:
    examples: list[Example] = field(default_factory=list)
    per_template: Counter = field(default_factory=Counter)
    failed_templates: list[str] = field(default_factory=list)


WORDING_SETS = ("all", "train", "heldout")


def generate_examples(
    onto: Ontology,
    count: int,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    wordings: str = "all",
) -> GenerationReport:
    """About `count` distinct question-program pairs spread over the templates the KB supports.

    A template the KB cannot fill (no qualifiers, say) is skipped after a few tries and named in
    the report; the others share its quota. `wordings="train"` uses all but the last wording of
    each template and `"heldout"` only the last, so an evaluation can ask in words the parser
    never saw in training."""
    if wordings not in WORDING_SETS:
        raise ValueError(f"wordings must be one of {WORDING_SETS}")
    from apps.kbqa.compose import COMPOSED  # the compositional shapes build on this module's helpers

    templates = {**TEMPLATES, **COMPOSED}
    rng = random.Random(seed)
    report = GenerationReport()
    seen: set[str] = set()
    active = list(templates)
    misses: Counter = Counter()
    attempts = 0
    while len(report.examples) < count and active and attempts < count * 20:
        attempts += 1
        name = active[attempts % len(active)]
        sample = templates[name](onto, rng)
        answer = run(onto, sample[1]) if sample else None
        if sample is None or answer is None:
            misses[name] += 1
            if misses[name] >= 40 and report.per_template[name] == 0:
                active.remove(name)
                report.failed_templates.append(name)
            continue
        options, program = sample
        if wordings == "train":
            options = options[:-1]
        elif wordings == "heldout":
            options = options[-1:]
        question = rng.choice(options)
        if question in seen:
            continue
        seen.add(question)
        report.examples.append(Example(question, program, answer, name))
        report.per_template[name] += 1
        if progress and len(report.examples) % 100 == 0:
            progress(len(report.examples) / count)
    return report
