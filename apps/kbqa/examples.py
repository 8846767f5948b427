"""Example questions to show on the ask page, and how well a KB's examples read.

The training templates (questions.py) put any label into any slot, which is what a parser needs
and what a reader should not see ("germanium-78 has which isotope of?"). Examples shown to a
person use only labels that read as nouns ("population", "capital"), entity names without
codes or numbers, and the plural of a concept where English wants one. They are computed once
when a KB is imported and stored in its summary, so no page builds them per request.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from apps.kbqa.ontology import Ontology, quantity_text, round_threshold, run, step

EXAMPLES = 6
# Words that make a label a verb phrase or a preposition phrase rather than a noun.
NON_NOUN_WORDS = {"of", "by", "with", "in", "on", "at", "to", "from", "for", "used", "located", "contains", "shares"}
UNREADABLE_NAME = re.compile(r"[\d()/_]|^[A-Z]{2,}$")


def noun_label(label: str) -> bool:
    """A label that reads as a noun in "the <label> of X": short, no verb or preposition, no code."""
    words = label.casefold().split()
    if not words or len(words) > 3 or NON_NOUN_WORDS & set(words):
        return False
    return not re.search(r"\d|code|\bid\b|iso|fips|iana|cas\b", label.casefold())


def plural(noun: str) -> str:
    """English plural of a concept label ("city" -> "cities", "country" -> "countries")."""
    for joint in (" with ", " of ", " in "):  # "city with millions of inhabitants" -> "cities with ..."
        if joint in noun:
            first, _, rest = noun.partition(joint)
            return f"{plural(first)}{joint}{rest}"
    head, _, last = noun.rpartition(" ")
    if re.search(r"[^aeiou]y$", last):
        last = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}".strip()


def readable_name(name: str) -> bool:
    return 2 <= len(name) <= 30 and not UNREADABLE_NAME.search(name)


def article(word: str) -> str:
    return "an" if word[:1].casefold() in "aeiou" else "a"


Maker = Callable[[Ontology, random.Random], str | None]


def _readable_entity(onto: Ontology, rng: random.Random, want: Callable[[str], bool]) -> str | None:
    # The most connected entities are the best known ones (France rather than a district).
    pool = sorted(
        (eid for eid in onto.unique_name_ids if readable_name(onto.name[eid])),
        key=lambda eid: -len(onto.relation_facts(eid)),
    )[:200]
    for _ in range(80):
        if not pool:
            return None
        eid = rng.choice(pool)
        if want(eid):
            return eid
    return None


def _noun_keys(onto: Ontology, eid: str, kind: str | None = None) -> list[str]:
    return sorted(
        {a["key"] for a in onto.attributes(eid) if noun_label(a["key"]) and (kind is None or a["value"].type == kind)}
    )


def _noun_concepts(onto: Ontology, min_members: int = 3) -> list[str]:
    return sorted(
        cid for cid, name in onto.concepts.items() if noun_label(name) and len(onto.members[cid]) >= min_members
    )


def ex_attribute(onto: Ontology, rng: random.Random) -> str | None:
    eid = _readable_entity(onto, rng, lambda e: bool(_noun_keys(onto, e)))
    if eid is None:
        return None
    key = rng.choice(_noun_keys(onto, eid))
    question = f"What is the {key} of {onto.name[eid]}?"
    return question if run(onto, [step("Find", [], [onto.name[eid]]), step("QueryAttr", [0], [key])]) else None


def _noun_relations(onto: Ontology, eid: str) -> list[dict]:
    return [
        r
        for r in onto.relation_facts(eid)
        if r["direction"] == "forward" and noun_label(r["relation"]) and readable_name(onto.name[r["object"]])
    ]


def ex_relation(onto: Ontology, rng: random.Random) -> str | None:
    eid = _readable_entity(onto, rng, lambda e: bool(_noun_relations(onto, e)))
    if eid is None:
        return None
    fact = rng.choice(_noun_relations(onto, eid))
    return f"What is the {fact['relation']} of {onto.name[eid]}?"


def ex_two_hop(onto: Ontology, rng: random.Random) -> str | None:
    eid = _readable_entity(
        onto, rng, lambda e: any(_noun_keys(onto, r["object"], "quantity") for r in _noun_relations(onto, e))
    )
    if eid is None:
        return None
    fact = rng.choice([r for r in _noun_relations(onto, eid) if _noun_keys(onto, r["object"], "quantity")])
    key = rng.choice(_noun_keys(onto, fact["object"], "quantity"))
    return f"What is the {key} of the {fact['relation']} of {onto.name[eid]}?"


def ex_count(onto: Ontology, rng: random.Random) -> str | None:
    concepts = _noun_concepts(onto)
    return f"How many {plural(onto.concepts[rng.choice(concepts)])} are there?" if concepts else None


def _concept_key(onto: Ontology, rng: random.Random) -> tuple[str, str, list[float]] | None:
    for cid in rng.sample(_noun_concepts(onto), len(_noun_concepts(onto))):
        members = sorted(onto.members[cid])[:400]
        keys = sorted({a["key"] for e in members for a in onto.attributes(e) if a["value"].type == "quantity"})
        keys = [k for k in keys if noun_label(k) and k in onto.key_unit]
        rng.shuffle(keys)
        for key in keys:
            values = [v for e in members if (v := onto.quantity(e, key)) is not None]
            if len(values) >= 3:
                return onto.concepts[cid], key, values
    return None


def ex_superlative(onto: Ontology, rng: random.Random) -> str | None:
    found = _concept_key(onto, rng)
    if found is None:
        return None
    concept, key, _values = found
    word = rng.choice(["largest", "smallest"])
    return f"Which {concept} has the {word} {key}?"


def ex_count_filter(onto: Ontology, rng: random.Random) -> str | None:
    found = _concept_key(onto, rng)
    if found is None:
        return None
    concept, key, values = found
    threshold = quantity_text(round_threshold(sorted(values)[len(values) // 2]), onto.key_unit[key])
    return f"How many {plural(concept)} have {article(key)} {key} greater than {threshold}?"


def ex_verify(onto: Ontology, rng: random.Random) -> str | None:
    eid = _readable_entity(onto, rng, lambda e: any(k in onto.key_unit for k in _noun_keys(onto, e, "quantity")))
    if eid is None:
        return None
    key = rng.choice([k for k in _noun_keys(onto, eid, "quantity") if k in onto.key_unit])
    value = onto.quantity(eid, key)
    if value is None:
        return None
    threshold = quantity_text(round_threshold(value * rng.choice([0.5, 2.0])), onto.key_unit[key])
    return f"Is the {key} of {onto.name[eid]} more than {threshold}?"


MAKERS: tuple[Maker, ...] = (
    ex_attribute,
    ex_relation,
    ex_superlative,
    ex_two_hop,
    ex_count_filter,
    ex_count,
    ex_verify,
)


def example_questions(onto: Ontology, count: int = EXAMPLES, seed: int = 3) -> list[str]:
    """Up to `count` grammatical questions of different shapes that the KB can answer."""
    rng = random.Random(seed)
    questions: list[str] = []
    for maker in MAKERS:
        if len(questions) >= count:
            break
        question = maker(onto, rng)
        if question and question not in questions:
            questions.append(question)
    return questions


def readability(questions: list[str], count: int = EXAMPLES) -> float:
    """How well a KB's examples read, 0..1: a full set of short questions scores highest.
    Used to choose the KB the ask page opens on."""
    if not questions:
        return 0.0
    scores = [1.0 - 0.3 * (len(q) > 70) - 0.2 * (len(q) > 90) for q in questions]
    return round(sum(scores) / len(scores) * min(1.0, len(questions) / count), 3)
