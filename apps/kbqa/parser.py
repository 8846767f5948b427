"""ProgramTransfer's two-stage parser: a sketch parser, then an argument parser with
ontology-guided pruning and beam search.

- Sketch parser: a multinomial logistic regression over the question's all-MiniLM-L6-v2
  embedding, predicting the function sequence with its dependency structure. Trained on the
  generated pairs of a source KB only; its weights are plain lists (no pickles).
- Argument parser: for each function of a sketch, candidates come from the KB the question is
  asked on (entity names found in the question; concepts, relations, attribute and qualifier keys
  ranked by similarity to the question's word spans). With pruning on, the ontology narrows each
  step to what can follow the entities in hand (a relation must leave from them, an attribute must
  exist on them, a concept must contain some of them) and every partial program is executed, so
  beams whose entity set runs empty are dropped. Candidate counts before and after pruning are
  reported per step.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from apps.inference.embeddings import embed
from apps.kbqa import cues
from apps.kbqa.questions import Ontology, parse_sketch, quantity_text
from apps.kbqa.services import FUNCTIONS, StepError, execute_step
from apps.kbqa.sketches import SketchClassifier, fit_sketch_model

BEAM_WIDTH = 6
TOP_SKETCHES = 10  # sketches tried per question (most are cut by the bound in parse_question)
SKETCH_TEMPER = 0.5
COVERAGE_WEIGHT = 0.5
MIN_COVER = 0.1
PER_ROLE = 4  # candidates per argument role that enter the beam
SHOWN_PRUNED = 3
MIN_SIMILARITY = 0.05

STOPWORDS = {
    "a",
    "an",
    "the",
    "of",
    "is",
    "are",
    "was",
    "were",
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "how",
    "many",
    "much",
    "does",
    "do",
    "did",
    "have",
    "has",
    "with",
    "and",
    "or",
    "to",
    "in",
    "on",
    "for",
    "by",
    "as",
    "its",
    "their",
    "it",
    "that",
    "this",
    "than",
    "there",
    "me",
    "tell",
    "give",
    "name",
    "list",
    "count",
    "number",
    "among",
    "all",
    "between",
}
GREATER_CUES = ("greater", "more", "larger", "higher", "above", "over", "exceed", "bigger", "longer", "heavier")
LESS_CUES = ("less", "smaller", "lower", "below", "under", "fewer", "shorter", "lighter")
LARGEST_CUES = ("largest", "highest", "greatest", "biggest", "most", "maximum", "longest", "heaviest")
SMALLEST_CUES = ("smallest", "lowest", "least", "fewest", "minimum", "shortest", "lightest")
CUE_WORDS = set(GREATER_CUES + LESS_CUES + LARGEST_CUES + SMALLEST_CUES) | {"before", "after", "since", "when"}
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")
WORD = re.compile(r"[\w'\-/.]+", re.UNICODE)


# ---------------------------------------------------------------------------------------------
# Sketch parser (over the packaged all-MiniLM-L6-v2 embeddings of apps.inference.embeddings)


def train_sketch_classifier(questions: list[str], sketches: list[str], onto: Ontology) -> SketchClassifier:
    """Fit the sketch parser on (question, sketch) pairs of one KB, read through its ontology."""
    return fit_sketch_model(embed([delexicalize(q, onto) for q in questions]), sketches)


# ---------------------------------------------------------------------------------------------
# What the question mentions


@dataclass
class Mention:
    entity_name: str
    start: int
    end: int
    score: float


@dataclass
class QuestionContext:
    question: str
    onto: Ontology
    mentions: list[Mention]
    masked: str  # the question with entity mentions blanked out
    spans: list[str]
    span_embeddings: np.ndarray
    span_index: dict[str, int]
    label_scores: dict[str, float] = field(default_factory=dict)
    exact: dict[str, float] | None = None

    def similarity(self, label: str) -> float:
        """How well a KB label (concept, relation, key) matches some span of the question.
        A label written out in full scores 1; one found only inside a longer label that is
        also written out ("city" in "capital city") scores 0.9."""
        if label not in self.label_scores:
            if self.exact is None:  # once per question: it scans every label of the KB
                self.exact = exact_labels(self.masked, self.onto)
            exact = self.exact
            if label in exact:
                score = exact[label]
            elif not self.spans:
                score = 0.0
            else:
                vector = label_embedding(self.onto, label)
                score = float(np.max(self.span_embeddings @ vector))
            self.label_scores[label] = max(score, MIN_SIMILARITY)
        return self.label_scores[label]


def all_labels(onto: Ontology) -> dict[str, str]:
    """Every KB label with its kind; a label that is several kinds keeps the first."""
    labels: dict[str, str] = {}
    for kind, names in (
        ("attribute", onto.attribute_keys),
        ("relation", onto.relations),
        ("concept", onto.concepts.values()),
        ("qualifier", onto.qualifier_keys),
    ):
        for name in names:
            labels.setdefault(name, kind)
    return labels


def label_matches(text: str, onto: Ontology) -> list[tuple[int, int, str]]:
    """(start, end, label) for labels written out in the text, plural concepts included."""
    lowered = text.casefold()
    concepts = set(onto.concepts.values())
    matches = []
    compact = re.sub(r"[\s-]", "", lowered)
    for label in all_labels(onto):
        folded = label.casefold()
        is_concept = label in concepts
        if re.sub(r"[\s-]", "", folded.rstrip("y")) not in compact:
            continue
        plural = r"(?:s|es)?" if is_concept else ""
        # "time zone" also matches "timezone" and "time-zone".
        body = r"[\s-]?".join(re.escape(word) for word in folded.split())
        pattern = rf"(?<!\w){body}{plural}(?!\w)"
        if is_concept and folded.endswith("y"):
            stem = r"[\s-]?".join(re.escape(word) for word in folded[:-1].split())
            pattern = rf"(?<!\w)(?:{body}|{stem}ies)(?!\w)"
        matches.extend((m.start(), m.end(), label) for m in re.finditer(pattern, lowered))
    return matches


def exact_labels(text: str, onto: Ontology) -> dict[str, float]:
    matches = label_matches(text, onto)
    scores = {}
    for start, end, label in matches:
        inside = any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in matches)
        scores[label] = max(scores.get(label, 0.0), 0.9 if inside else 1.0)
    return scores


CONCEPT_CONTEXT = re.compile(r"(?:\b(?:which|what|many|all|every|among|the number of))\s+(?:the\s+)?$", re.IGNORECASE)
PLACEHOLDERS = {"attribute": "property", "relation": "relation", "concept": "category", "qualifier": "detail"}


def delexicalize(question: str, onto: Ontology, mentions: list[Mention] | None = None) -> str:
    """The question with KB-specific words replaced by their kind ("What is the property of
    something?"), so that the sketch parser learns question structure, not one KB's vocabulary;
    this is what lets a parser trained on one KB read questions about another."""
    mentions = find_mentions(question, onto) if mentions is None else mentions
    spans = [(m.start, m.end, "something") for m in mentions if m.start >= 0]
    kinds = all_labels(onto)
    concepts = set(onto.concepts.values())
    for start, end, label in sorted(label_matches(question, onto), key=lambda m: -(m[1] - m[0])):
        if not any(start < e and s < end for s, e, _ in spans):
            kind = kinds[label]
            if label in concepts and CONCEPT_CONTEXT.search(question[:start]):
                kind = "concept"  # "which country ..." names a class even where "country" is also a relation
            spans.append((start, end, PLACEHOLDERS[kind]))
    years = {str(year) for year in cues.years_in(question)}
    for match in NUMBER.finditer(question):
        if not any(match.start() < e and s < match.end() for s, e, _ in spans):
            # A year reads as a time ("in 1999"), not an amount: it keeps a year's shape.
            spans.append((match.start(), match.end(), "1990" if match.group() in years else "5"))
    text = question
    for start, end, word in sorted(spans, key=lambda span: -span[0]):
        text = text[:start] + word + text[end:]
    return text


_label_cache: dict[str, np.ndarray] = {}


def label_embedding(onto: Ontology, label: str) -> np.ndarray:
    """A label's embedding; the first call for a KB embeds all its labels in one batch."""
    if label not in _label_cache:
        missing = sorted(set(all_labels(onto)) - set(_label_cache) | {label})
        for name, vector in zip(missing, embed(missing), strict=True):
            _label_cache[name] = vector
    return _label_cache[label]


def find_mentions(question: str, onto: Ontology) -> list[Mention]:
    """Entity names that occur in the question (case-insensitive, on word boundaries), longest
    first; a name inside a longer mention is dropped. When nothing matches, names sharing a
    rare word with the question are ranked by string similarity."""
    lowered = question.casefold()
    found: list[Mention] = []
    for name, lowered_name in onto.names_casefold():
        if len(lowered_name) < 2 or lowered_name not in lowered:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(lowered_name)}(?!\w)", lowered):
            exact = question[match.start() : match.end()] == name
            if (lowered_name in STOPWORDS or lowered_name in CUE_WORDS) and not exact:
                continue
            found.append(Mention(name, match.start(), match.end(), 1.0 if exact else 0.85))
    found.sort(key=lambda m: (-(m.end - m.start), m.start))
    kept: list[Mention] = []
    for mention in found:
        if not any(mention.start < k.end and k.start < mention.end for k in kept):
            kept.append(mention)
    if not kept:
        kept = fuzzy_mentions(question, onto)
    return sorted(kept, key=lambda m: m.start)


def fuzzy_mentions(question: str, onto: Ontology, limit: int = 5) -> list[Mention]:
    import difflib

    words = [w for w in WORD.findall(question) if w.casefold() not in STOPWORDS and len(w) >= 3]
    candidates: set[str] = set()
    for word in words:
        candidates.update(onto.names_with_word(word.casefold()))
    scored = []
    for name in candidates:
        ratio = difflib.SequenceMatcher(None, name.casefold(), question.casefold()).find_longest_match()
        scored.append((ratio.size / max(len(name), 1), name))
    scored.sort(reverse=True)
    mentions = []
    for score, name in scored[:limit]:
        if score >= 0.6:
            mentions.append(Mention(name, -1, -1, 0.6 * score))
    return mentions


def question_context(question: str, onto: Ontology) -> QuestionContext:
    mentions = find_mentions(question, onto)
    masked = question
    for mention in sorted((m for m in mentions if m.start >= 0), key=lambda m: -m.start):
        masked = masked[: mention.start] + " | " + masked[mention.end :]
    spans = []
    for chunk in masked.split("|"):
        words = WORD.findall(chunk)
        for n in range(1, 5):
            for i in range(len(words) - n + 1):
                gram = words[i : i + n]
                if gram[0].casefold() in STOPWORDS or gram[-1].casefold() in STOPWORDS:
                    continue
                spans.append(" ".join(gram))
    spans = list(dict.fromkeys(spans))
    return QuestionContext(question, onto, mentions, masked, spans, embed(spans), {s: i for i, s in enumerate(spans)})


def numbers_in(ctx: QuestionContext) -> list[float]:
    text = ctx.masked
    for key in ctx.onto.attribute_keys:  # "ISO 3166-1 code" holds digits that are not values
        text = re.sub(re.escape(key), " ", text, flags=re.IGNORECASE)
    scaled = cues.scaled_numbers(text)  # "2 million" is 2000000, not 2
    for phrase, _value in scaled:
        text = text.replace(phrase, " ")
    return [value for _phrase, value in scaled] + [float(m.group().replace(",", "")) for m in NUMBER.finditer(text)]


def has_cue(text: str, cues: tuple[str, ...]) -> bool:
    lowered = text.casefold()
    return any(re.search(rf"\b{cue}", lowered) for cue in cues)


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
    sample = entity_ids[:3000]
    for key in onto.attribute_keys:
        holders = index.get(key, {})
        for eid in sample:
            if eid in holders:
                present.setdefault(key, set()).add(onto.key_type.get(key, "string"))
                break
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
    scored = []
    for relation in ctx.onto.relations:
        similarity = ctx.similarity(relation)
        after = re.search(rf"{re.escape(relation.casefold())}\s+of\b", lowered) is not None
        for direction in ("forward", "backward"):
            # "the capital of X" reads forward from X; "which country has capital X" backward.
            cue = 0.02 if (direction == "forward") == after else 0.0
            reason = None if (relation, direction) in present else "no such relation leaves the entities in hand"
            if (relation, direction) == back:
                reason = "goes back the way the previous step came"
            scored.append((Candidate([relation, direction], similarity + cue, f"{relation} ({direction})"), reason))
    return _split(scored, prune)


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
    lowered = ctx.masked.casefold()  # not inside an entity's name
    values = ctx.onto.string_values(key)
    found = [v for v in values if len(v) >= 1 and re.search(rf"(?<!\w){re.escape(v.casefold())}(?!\w)", lowered)]
    found.sort(key=len, reverse=True)
    return [Candidate([v], 1.0, v) for v in found[:PER_ROLE]]


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


def search_sketch(ctx: QuestionContext, sketch: str, prune: bool) -> tuple[Beam | None, list[StepCandidates], int]:
    """Beam search for the arguments of one sketch. Returns the best complete beam (or None),
    the candidates of each step as seen by the leading beam, and how far the search got."""
    beams = [Beam(0.0, [], [], set())]
    shown: list[StepCandidates] = []
    find_order = 0
    for index, (function, deps) in enumerate(parse_sketch(sketch)):
        if any(d >= index for d in deps):
            raise StepError(f"sketch step {index} depends on a later step")
        grown: list[Beam] = []
        for rank, beam in enumerate(beams):
            options = step_candidates(ctx, function, deps, beam, find_order, prune)
            if rank == 0:
                shown.append(options)
            for candidate in options.kept:
                new_step = {"function": function, "dependencies": deps, "inputs": candidate.inputs}
                score = beam.score + math.log(max(candidate.score, MIN_SIMILARITY))
                if prune:
                    try:
                        kind, result = execute_step(
                            ctx.onto.engine,
                            function,
                            candidate.inputs,
                            [(d, *beam.results[d]) for d in deps],
                        )
                    except StepError:
                        continue
                    if kind == "entities" and not result[0]:
                        continue
                else:
                    kind, result = FUNCTIONS[function].gives, None
                used = beam.used_names | ({candidate.inputs[0]} if function == "Find" else set())
                grown.append(Beam(score, beam.steps + [new_step], beam.results + [(kind, result)], used))
        if function == "Find":
            find_order += 1
        if not grown:
            return None, shown, index
        grown.sort(key=lambda b: -b.score)
        beams = grown[:BEAM_WIDTH]
    return beams[0], shown, len(shown)


@dataclass
class ParseResult:
    sketches: list[dict]
    program: list[dict]
    candidates: list[dict]
    complete: bool
    error: str | None
    pruning: dict
    seconds: float
    mentions: list[str]

    def as_json(self) -> dict:
        return {
            "sketches": self.sketches,
            "sketch": self.sketches[0]["sketch"] if self.sketches else "",
            "program": self.program,
            "candidates": self.candidates,
            "complete": self.complete,
            "error": self.error,
            "pruning": self.pruning,
            "seconds": round(self.seconds, 3),
            "mentions": self.mentions,
        }


HOW_MANY = re.compile(r"\b(how many|number of|count)\b", re.IGNORECASE)
SUPERLATIVE = re.compile(r"\bthe \w{2,}est\b", re.IGNORECASE)  # "the oldest", "the earliest"
CHOICE = re.compile(r"\bor\b|\bbetween\b", re.IGNORECASE)  # "A or B", "between A and B"
YES_NO = re.compile(r"^\s*(is|are|was|were|does|do|did|has|have|had|can)\b", re.IGNORECASE)
RELATION_WORDS = re.compile(r"\b(relat\w*|connect\w*|link\w*)\b", re.IGNORECASE)
OR_WORD = re.compile(r"\bor\b|\beither\b", re.IGNORECASE)


def sketch_prior(question: str, mentions: list[Mention]) -> Callable[[str], float]:
    """What the question's form says about its sketch, whatever the KB: "how many" asks for a
    count (or a quantity), a yes/no question for a verification, a superlative for SelectAmong,
    "A or B" for SelectBetween, and each entity written out in the question is most likely found
    by its own Find. Weights, not rules: the classifier and the beam still decide among what
    remains."""
    counting = HOW_MANY.search(question) is not None
    yes_no = YES_NO.search(question) is not None and " or " not in question.casefold()
    superlative = has_cue(question, LARGEST_CUES + SMALLEST_CUES) or SUPERLATIVE.search(question) is not None
    choice = CHOICE.search(question) is not None
    named = sum(1 for m in mentions if m.start >= 0)
    expected = cues.expected_answer(question)
    dated = bool(cues.years_in(question))
    asks_relation = RELATION_WORDS.search(question) is not None
    comparative = has_cue(question, GREATER_CUES + LESS_CUES)
    # A number that is not a year, with "more than"/"under" before it, filters or verifies an amount.
    years = {str(year) for year in cues.years_in(question)}
    amount = bool(cues.scaled_numbers(question)) or (
        comparative and any(match.group() not in years for match in NUMBER.finditer(question))
    )
    union = OR_WORD.search(question) is not None and not (choice and comparative)

    def weight(sketch: str) -> float:
        functions = [function for function, _deps in parse_sketch(sketch)]
        last, finds = functions[-1], functions.count("Find")
        factor = 1.0
        if expected in ("time", "quantity") and last not in ("QueryAttr", "QueryRelationQualifier"):
            factor *= 0.05  # "when ...", "how far ..." ask for a value, not names
        year_step = any(f in ("FilterYear", "QFilterYear", "VerifyYear", "FilterDate", "VerifyDate") for f in functions)
        if dated and expected != "time" and not year_step:
            factor *= 0.2  # "in 1999", "before 1980": a year is a time filter, not an amount
        if dated and last == "VerifyNum":
            factor *= 0.2
        if (last == "Count") != counting and not (counting and last == "QueryAttr"):
            factor *= 0.05
        if last.startswith("Verify") != yes_no:
            factor *= 0.05
        if last == "SelectAmong" and not superlative:
            factor *= 0.1
        if last == "SelectBetween" and not choice:
            factor *= 0.1
        if named and finds < named:
            factor *= 0.03 ** (named - finds)  # an entity written out and never used
        steps = parse_sketch(sketch)
        if any(f in ("QueryName", "Count", "SelectAmong") and steps[d[0]][0] == "Find" for f, d in steps if d):
            factor *= 0.01  # the name of the entity just named, or a count of one: never the question
        if "QueryRelation" in functions and not asks_relation:
            factor *= 0.05  # "how is A related to B" asks for a relation; other questions do not
        if amount and not any(f in ("FilterNum", "VerifyNum", "SelectBetween") for f in functions):
            factor *= 0.1
        if "Or" in functions and not union:
            factor *= 0.1
        if "And" in functions and union and " and " not in question.casefold():
            factor *= 0.3
        return factor

    return weight


def parse_question(question: str, onto: Ontology, classifier: SketchClassifier, prune: bool = True) -> ParseResult:
    """Question -> KoPL program, trying the top sketches and keeping the best-scoring program."""
    started = time.perf_counter()
    ctx = question_context(question, onto)
    prior = sketch_prior(question, ctx.mentions)
    ranked = classifier.top(embed([delexicalize(question, onto, ctx.mentions)])[0], k=TOP_SKETCHES, prior=prior)
    expected = cues.expected_answer(question)
    best: tuple[float, str, Beam, list[StepCandidates]] | None = None
    partial: tuple[int, str, list[StepCandidates]] | None = None
    for sketch, probability in ranked:
        # The sketch classifier was trained on another KB's questions: its share of the
        # probability is tempered (the question-form prior is not), so that how well the KB's
        # labels fit the question's words can outvote it.
        sketch_score = SKETCH_TEMPER * math.log(max(probability, 1e-6)) + (1 - SKETCH_TEMPER) * math.log(
            max(prior(sketch), 1e-9)
        )
        # A beam scores at most ~0 (log similarities, coverage), so a sketch whose score alone
        # is below the best total cannot win: skip its search.
        if best is not None and sketch_score + 0.1 < best[0]:
            continue
        try:
            beam, shown, reached = search_sketch(ctx, sketch, prune)
        except StepError:
            continue
        if beam is None:
            if partial is None or reached > partial[0]:
                partial = (reached, sketch, shown)
            continue
        total = sketch_score + beam.score + coverage(ctx, beam.steps)
        if prune and not cues.answer_fits(expected, *beam.results[-1]):
            total += math.log(0.01)  # an answer of the wrong type ranks lower
        if best is None or total > best[0]:
            best = (total, sketch, beam, shown)
    sketches = [{"sketch": s, "probability": round(p, 4)} for s, p in ranked]
    mentions = [m.entity_name for m in ctx.mentions]
    if best is None:
        reached, sketch, shown = partial or (0, ranked[0][0], [])
        functions = parse_sketch(sketch)
        program = [
            {"function": f, "dependencies": d, "inputs": (shown[i].kept[0].inputs if shown[i].kept else [])}
            for i, (f, d) in enumerate(functions[: len(shown)])
        ]
        failed = functions[reached][0] if reached < len(functions) else "?"
        return ParseResult(
            sketches,
            program,
            [s.as_json() for s in shown],
            False,
            f"No KB arguments fit step {reached} ({failed}) of the sketch {sketch}; this is the best partial program.",
            pruning_summary(shown),
            time.perf_counter() - started,
            mentions,
        )
    _total, sketch, beam, shown = best
    sketches.sort(key=lambda s: s["sketch"] != sketch)  # the chosen sketch first
    return ParseResult(
        sketches,
        beam.steps,
        [s.as_json() for s in shown],
        True,
        None,
        pruning_summary(shown),
        time.perf_counter() - started,
        mentions,
    )


QUESTION_WORDS = {"when", "where", "why", "whose", "much", "long", "far", "old", "big"}


def coverage(ctx: QuestionContext, steps: list[dict]) -> float:
    """How well the program's KB labels explain the question's content words: the sum, over
    words outside entity names, of the log of each word's best similarity to a label the program
    uses. A program that leaves "born" unexplained ("the director of X", asked "where was the
    director of X born") scores lower than one that follows "place of birth" too."""
    labels = all_labels(ctx.onto)
    used = sorted({str(value) for step in steps for value in step["inputs"] if value in labels})
    words = [
        w
        for w in dict.fromkeys(WORD.findall(ctx.masked))
        if w.casefold() not in STOPWORDS | CUE_WORDS | QUESTION_WORDS
        and not NUMBER.fullmatch(w)
        and w in ctx.span_index
    ]
    if not words:
        return 0.0
    if not used:
        return COVERAGE_WEIGHT * len(words) * math.log(MIN_COVER)
    vectors = np.stack([label_embedding(ctx.onto, label) for label in used])
    best = (ctx.span_embeddings[[ctx.span_index[w] for w in words]] @ vectors.T).max(axis=1)
    for i, word in enumerate(words):  # a label written out in the question explains its words
        if any(word.casefold() in label.casefold().split() for label in used):
            best[i] = 1.0
    return COVERAGE_WEIGHT * float(np.log(np.clip(best, MIN_COVER, 1.0)).sum())


def pruning_summary(shown: list[StepCandidates]) -> dict:
    before = sum(s.before for s in shown)
    after = sum(s.after for s in shown)
    return {"before": before, "after": after, "cut": round(1 - after / before, 3) if before else 0.0}
