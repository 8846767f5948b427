"""Compositional question-program pairs, walked off any KB's graph (the shapes KQA Pro has and the
first templates lacked): year and date filters, relations asked backwards and then followed
forwards, an attribute of an entity reached backwards, And/Or of two related sets (the same or
different relations), superlatives over a related set in either direction, verifications of
dates, qualifier lookups and qualifier year filters. Every template reads the ontology only.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from apps.kbqa.examples import plural
from apps.kbqa.ontology import Ontology, quantity_text, round_threshold, step
from apps.kbqa.questions import GREATER_WORDS, LARGEST_WORDS, LESS_WORDS, SMALLEST_WORDS, Sample, _entity_with

FLIP = {"forward": "backward", "backward": "forward"}
YEAR_WORDS = {"=": ["in"], ">": ["after", "later than", "since"], "<": ["before", "earlier than", "prior to"]}


def _year(value) -> int | None:
    if value.type == "year":
        return int(value.value)
    if value.type == "date":
        return value.value.year
    return None


def _time_attrs(onto: Ontology, eid: str) -> list[tuple[str, int]]:
    return [(a["key"], y) for a in onto.attributes(eid) if (y := _year(a["value"])) is not None]


def _year_phrase(rng: random.Random, op: str, year: int) -> str:
    return f"{rng.choice(YEAR_WORDS[op])} {year}"


def _related(onto: Ontology, eid: str, direction: str | None = None) -> list[dict]:
    return [r for r in onto.relation_facts(eid) if direction is None or r["direction"] == direction]


def _relation_clause(r: str, e: str, direction: str) -> str:
    """How a related set is named: "whose capital is X" reads the relation backwards from X."""
    return f"whose {r} is {e}" if direction == "backward" else f"that are the {r} of {e}"


def t_filter_year(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: bool(_time_attrs(onto, e)) and bool(onto.direct_concepts(e)))
    if eid is None:
        return None
    key, year = rng.choice(_time_attrs(onto, eid))
    concept = onto.concept_of(eid, rng)
    c = plural(concept)
    op = rng.choice(["=", ">", "<"])
    when = _year_phrase(rng, op, year if op == "=" else year + (1 if op == "<" else -1))
    value = when.split()[-1]
    count = rng.random() < 0.35
    head = step("Count", [2], []) if count else step("QueryName", [2], [])
    if count:
        wordings = [f"How many {c} have a {key} {when}?", f"How many {c} had their {key} {when}?"]
    else:
        wordings = [
            f"Which {c} have a {key} {when}?",
            f"Which {c} had their {key} {when}?",
            f"List the {c} with {key} {when}.",
        ]
    program = [
        step("FindAll", [], []),
        step("FilterYear", [0], [key, value, op]),
        step("FilterConcept", [1], [concept]),
    ]
    return wordings, program + [head]


def t_related_filter(onto: Ontology, rng: random.Random) -> Sample | None:
    """A related set narrowed by a year or a number: "Which films by X came out after 2005?"."""
    eid = _entity_with(onto, rng, lambda e: len(onto.relation_facts(e)) >= 2)
    if eid is None:
        return None
    fact = rng.choice(onto.relation_facts(eid))
    r, direction = fact["relation"], FLIP[fact["direction"]]  # from the object back to eid's side
    anchor = fact["object"]
    members = [f["object"] for f in onto.relation_facts(anchor) if f["relation"] == r and f["direction"] == direction]
    concept = onto.concept_of(eid, rng)
    if concept is None or anchor not in onto.unique_ids:
        return None
    times = _time_attrs(onto, eid)
    quantities = [a["key"] for a in onto.attributes(eid) if a["value"].type == "quantity" and a["key"] in onto.key_unit]
    e, c = onto.name[anchor], plural(concept)
    clause = _relation_clause(r, e, direction)
    if times and (not quantities or rng.random() < 0.5):
        key, year = rng.choice(times)
        op = rng.choice(["=", ">", "<"])
        value = year if op == "=" else year + (1 if op == "<" else -1)
        when = _year_phrase(rng, op, value)
        filter_step = step("FilterYear", [1], [key, value, op])
        wordings = [f"Which {c} {clause} have a {key} {when}?", f"Which {c} {clause} had their {key} {when}?"]
    elif quantities:
        key = rng.choice(quantities)
        values = [v for m in members if (v := onto.quantity(m, key)) is not None]
        if not values:
            return None
        op = rng.choice([">", "<"])
        v = quantity_text(round_threshold(sorted(values)[len(values) // 2]), onto.key_unit[key])
        word = rng.choice(GREATER_WORDS if op == ">" else LESS_WORDS)
        filter_step = step("FilterNum", [1], [key, v, op])
        wordings = [f"Which {c} {clause} have a {key} {word} {v}?", f"Which {c} {clause} have {key} {word} {v}?"]
    else:
        return None
    counted = rng.random() < 0.3
    program = [
        step("Find", [], [e]),
        step("Relate", [0], [r, direction]),
        filter_step,
        step("FilterConcept", [2], [concept]),
        step("Count", [3], []) if counted else step("QueryName", [3], []),
    ]
    if counted:
        wordings = [w.replace("Which", "How many", 1).rstrip("?") + "?" for w in wordings]
    return wordings, program


def t_backward_then(onto: Ontology, rng: random.Random) -> Sample | None:
    """An attribute or a relation of the entity reached backwards: "What currency does the
    country whose capital is Lima use?" (Find, Relate backward, then QueryAttr or Relate)."""
    eid = _entity_with(onto, rng, lambda e: bool(_related(onto, e, "backward")))
    if eid is None:
        return None
    fact = rng.choice(_related(onto, eid, "backward"))
    middle = fact["object"]
    concept = onto.concept_of(middle, rng)
    if concept is None:
        return None
    e, r, c = onto.name[eid], fact["relation"], concept
    onward = [f for f in _related(onto, middle, "forward") if f["relation"] != r]
    if onward and rng.random() < 0.5:
        r2 = rng.choice(onward)["relation"]
        wordings = [
            f"What is the {r2} of the {c} whose {r} is {e}?",
            f"Which {r2} does the {c} with {r} {e} have?",
            f"What {r2} has the {c} whose {r} is {e}?",
        ]
        tail = [step("Relate", [1], [r2, "forward"]), step("QueryName", [2], [])]
    else:
        attrs = onto.attributes(middle)
        if not attrs:
            return None
        key = rng.choice(attrs)["key"]
        wordings = [
            f"What is the {key} of the {c} whose {r} is {e}?",
            f"What {key} does the {c} with {r} {e} have?",
            f"Tell me the {key} of the {c} that has {r} {e}.",
        ]
        tail = [step("QueryAttr", [1], [key])]
    return wordings, [step("Find", [], [e]), step("Relate", [0], [r, "backward"])] + tail


def t_chain_attribute(onto: Ontology, rng: random.Random) -> Sample | None:
    """Two hops forward, then an attribute or a name: "When was the founder of X's studio born?"."""
    eid = _entity_with(onto, rng, lambda e: bool(_related(onto, e)))
    if eid is None:
        return None
    first = rng.choice(_related(onto, eid))
    second_options = [f for f in _related(onto, first["object"]) if f["object"] != eid]
    if not second_options:
        return None
    second = rng.choice(second_options)
    attrs = onto.attributes(second["object"])
    if not attrs:
        return None
    key = rng.choice(attrs)["key"]
    e, r1, r2 = onto.name[eid], first["relation"], second["relation"]
    wordings = [f"What is the {key} of the {r2} of the {r1} of {e}?", f"Give the {key} of the {r2} of {e}'s {r1}."]
    program = [
        step("Find", [], [e]),
        step("Relate", [0], [r1, first["direction"]]),
        step("Relate", [1], [r2, second["direction"]]),
        step("QueryAttr", [2], [key]),
    ]
    return wordings, program


def t_logical(onto: Ontology, rng: random.Random) -> Sample | None:
    """And/Or of two related sets, with the same relation or two different ones."""
    eid = _entity_with(onto, rng, lambda e: len(onto.relation_facts(e)) >= 2)
    if eid is None:
        return None
    facts = [f for f in onto.relation_facts(eid) if f["object"] in onto.unique_ids]
    if len(facts) < 2:
        return None
    first, second = rng.sample(facts, 2)
    if first["object"] == second["object"]:
        return None
    concept = onto.concept_of(eid, rng)
    if concept is None:
        return None
    op = rng.choice(["And", "Or"])
    e1, e2 = onto.name[first["object"]], onto.name[second["object"]]
    r1, r2, c = first["relation"], second["relation"], plural(concept)
    d1, d2 = FLIP[first["direction"]], FLIP[second["direction"]]
    joiner = "and" if op == "And" else "or"
    both = "both " if op == "And" else "either "
    if (r1, d1) == (r2, d2):
        wordings = [f"Which {c} have {r1} {both}{e1} {joiner} {e2}?", f"Which {c} have {r1} {e1} {joiner} {e2}?"]
    else:
        wordings = [
            f"Which {c} have {r1} {e1} {joiner} {r2} {e2}?",
            f"Which {c} have {both}{r1} {e1} {joiner} {r2} {e2}?",
        ]
    counted = rng.random() < 0.35
    if counted:
        wordings = [w.replace("Which", "How many", 1) for w in wordings]
    program = [
        step("Find", [], [e1]),
        step("Relate", [0], [r1, d1]),
        step("Find", [], [e2]),
        step("Relate", [2], [r2, d2]),
        step(op, [1, 3], []),
        step("FilterConcept", [4], [concept]),
        step("Count", [5], []) if counted else step("QueryName", [5], []),
    ]
    return wordings, program


def t_superlative_related(onto: Ontology, rng: random.Random) -> Sample | None:
    """A superlative over a related set in either direction ("Which neighbour of X ... the largest")."""
    eid = _entity_with(onto, rng, lambda e: len(onto.relation_facts(e)) >= 3)
    if eid is None:
        return None
    fact = rng.choice(onto.relation_facts(eid))
    r, direction = fact["relation"], fact["direction"]
    members = [f["object"] for f in onto.relation_facts(eid) if f["relation"] == r and f["direction"] == direction]
    keys = sorted(
        {
            a["key"]
            for m in members
            for a in onto.attributes(m)
            if a["value"].type == "quantity" and a["key"] in onto.key_unit
        }
    )
    concept = onto.concept_of(rng.choice(members), rng)
    if len(members) < 2 or not keys or concept is None:
        return None
    key = rng.choice(keys)
    op = rng.choice(["largest", "smallest"])
    word = rng.choice(LARGEST_WORDS if op == "largest" else SMALLEST_WORDS)
    e, c = onto.name[eid], concept
    clause = f"whose {r} is {e}" if direction == "backward" else f"that is a {r} of {e}"
    wordings = [f"Which {c} {clause} has {word} {key}?", f"Among the {plural(c)} {clause}, which has {word} {key}?"]
    program = [
        step("Find", [], [e]),
        step("Relate", [0], [r, direction]),
        step("FilterConcept", [1], [concept]),
        step("SelectAmong", [2], [key, op]),
    ]
    return wordings, program


def t_verify_year(onto: Ontology, rng: random.Random) -> Sample | None:
    eid = _entity_with(onto, rng, lambda e: bool(_time_attrs(onto, e)))
    if eid is None:
        return None
    key, year = rng.choice(_time_attrs(onto, eid))
    op = rng.choice(["=", ">", "<"])
    value = year + rng.choice([-3, 0, 3])
    e, when = onto.name[eid], _year_phrase(rng, op, value)
    wordings = [f"Was the {key} of {e} {when}?", f"Is {e}'s {key} {when}?", f"Did {e} have its {key} {when}?"]
    return wordings, [step("Find", [], [e]), step("QueryAttr", [0], [key]), step("VerifyYear", [1], [value, op])]


def _qualified_facts(onto: Ontology, eid: str) -> list[dict]:
    return [f for f in onto.relation_facts(eid) if f["qualifiers"] and f["object"] in onto.unique_ids]


def t_qualifier_of_fact(onto: Ontology, rng: random.Random) -> Sample | None:
    """A qualifier of one fact: "When did A receive B?", "How far is A from its nearest city?"."""
    eid = _entity_with(onto, rng, lambda e: bool(_qualified_facts(onto, e)))
    if eid is None:
        return None
    fact = rng.choice(_qualified_facts(onto, eid))
    qkey = rng.choice(sorted(fact["qualifiers"]))
    a, b, r = onto.name[eid], onto.name[fact["object"]], fact["relation"]
    timed = any(_year(v) is not None for v in fact["qualifiers"][qkey])
    if rng.random() < 0.5:  # the other end named
        if timed:
            wordings = [
                f"In which year did {a} have {r} {b}?",
                f"When did {a} get {r} {b}?",
                f"When was {b} the {r} of {a}?",
            ]
        else:
            wordings = [f"What is the {qkey} of {a}'s {r} {b}?", f"What {qkey} does {a} have for {r} {b}?"]
        program = [step("Find", [], [a]), step("Find", [], [b]), step("QueryRelationQualifier", [0, 1], [r, qkey])]
        return wordings, program
    if fact["direction"] != "forward" or sum(f["relation"] == r for f in onto.relation_facts(eid)) != 1:
        return None
    wordings = [f"What is the {qkey} of the {r} of {a}?", f"How much {qkey} is there to {a}'s {r}?"]
    if timed:
        wordings = [f"When did {a} get its {r}?", f"In which year did {a} have its {r}?"]
    program = [
        step("Find", [], [a]),
        step("Relate", [0], [r, "forward"]),
        step("QueryRelationQualifier", [0, 1], [r, qkey]),
    ]
    return wordings, program


def t_qualifier_filter_year(onto: Ontology, rng: random.Random) -> Sample | None:
    """Entities linked to one by a fact qualified with a year: "Who received X in 2001?"."""
    eid = _entity_with(
        onto,
        rng,
        lambda e: any(
            any(_year(v) is not None for vs in f["qualifiers"].values() for v in vs)
            for f in _related(onto, e, "backward")
        ),
    )
    if eid is None:
        return None
    facts = [
        f
        for f in _related(onto, eid, "backward")
        if any(_year(v) is not None for vs in f["qualifiers"].values() for v in vs)
    ]
    fact = rng.choice(facts)
    qkey, values = next((k, vs) for k, vs in fact["qualifiers"].items() if any(_year(v) is not None for v in vs))
    year = next(y for v in values if (y := _year(v)) is not None)
    e, r = onto.name[eid], fact["relation"]
    wordings = [f"Who had {r} {e} in {year}?", f"Which entity had {r} {e} in {year}?", f"What got {r} {e} in {year}?"]
    program = [
        step("Find", [], [e]),
        step("Relate", [0], [r, "backward"]),
        step("QFilterYear", [1], [qkey, year, "="]),
        step("QueryName", [2], []),
    ]
    return wordings, program


COMPOSED: dict[str, Callable[[Ontology, random.Random], Sample | None]] = {
    "filter_year": t_filter_year,
    "related_filter": t_related_filter,
    "backward_then": t_backward_then,
    "chain_attribute": t_chain_attribute,
    "logical": t_logical,
    "superlative_related": t_superlative_related,
    "verify_year": t_verify_year,
    "qualifier_of_fact": t_qualifier_of_fact,
    "qualifier_filter_year": t_qualifier_filter_year,
}
