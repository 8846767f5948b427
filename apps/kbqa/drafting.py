"""Drafting KoPL programs with the assistant model when the parser is unsure.

The sketch parser only proposes function sequences it learned from another KB's generated
questions; a person's wording ("When was the founder of X born?") can need one it ranks low. When
the parser's best program does not run, answers with the wrong type, or barely beats a program
with another answer, the assistant model writes a program too. Its output is held to a JSON
schema, which llama.cpp and vLLM turn into a grammar: function names are KoPL's, and every
argument is one of this KB's own labels retrieved for this question (the entities it mentions,
the concepts, relations, attribute and qualifier keys closest to its words), a number, year or
string value written in it, or an operator. So whatever the model writes is a program over this
KB; the parser then executes it and scores it beside its own candidates (apps.kbqa.parser).

The enum lists stay short (the retrieved candidates, not the whole KB): a small grammar keeps the
model's choice among plausible labels and the request fast.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from apps.kbqa import cues
from apps.kbqa.arguments import Beam, StepCandidates, step_candidates, string_value_candidates
from apps.kbqa.kopl import FUNCTION_VALUE_TYPE, FUNCTIONS, OPS, StepError, execute_step
from apps.kbqa.ontology import Ontology, quantity_text, run, sketch_of
from apps.kbqa.parser import (
    TOP_SKETCHES,
    WRONG_TYPE,
    ParseResult,
    beam_answer,
    fits_asked_class,
    pruning_summary,
    sketch_prior,
    sketch_term,
)
from apps.kbqa.reading import MIN_SIMILARITY, QuestionContext, all_labels, coverage, numbers_in
from apps.kbqa.sketches import SketchClassifier

logger = logging.getLogger(__name__)

MAX_STEPS = 10
TOP_CONCEPTS = 6
TOP_RELATIONS = 8
TOP_KEYS = 8
TOP_QUALIFIERS = 4
MAX_VALUES = 6
DRAFT_TOKENS = 320
# Seconds. A draft runs after the parser's answer is shown, so it holds up no answer, only one
# interactive worker: measured on the shared 2-core machine (load 4-7, bench/kbqa_eval.py --draft)
# drafts took p50 60 s and p95 224 s, so 60 s failed about half of them.
DRAFT_TIMEOUT = 180.0
# Functions that join the two most recent branches (a branch starts at Find or FindAll).
BINARY = tuple(name for name, spec in FUNCTIONS.items() if spec.deps == 2)
# KQA Pro's alias of QueryName and the rarely needed attribute-qualifier forms stay out of the
# grammar: fewer choices for a 1.5B model, and every question they answer has another program.
LEFT_OUT = ("What", "QueryAttrUnderCondition", "QueryAttrQualifier")
COMPARE = ("=", "<", ">", "!=")

RULES = (
    "You translate a question into a KoPL program over a knowledge base.",
    "A program is a list of steps, each [function, inputs...]. A step works on the result of the step before it.",
    "Find and FindAll start a new branch; And, Or, QueryRelation, SelectBetween and QueryRelationQualifier"
    " join the last two branches.",
    "Functions and their inputs:",
    "- Find [entity]: the entity with that name. FindAll []: every entity.",
    "- FilterConcept [concept]: keep the entities of that concept.",
    "- Relate [relation, forward|backward]: follow a relation. forward: from the entity to its value"
    ' ("the director of Alien": Find Alien, Relate director forward). backward: to the entities that have it'
    ' ("films directed by Ridley Scott": Find Ridley Scott, Relate director backward).',
    "- FilterNum [attribute, number, =|<|>|!=], FilterYear [attribute, year, op], FilterStr [attribute, text]:"
    " keep entities by an attribute.",
    "- QFilterYear [qualifier, year, op]: keep the entities reached by the last Relate whose fact has that year.",
    "- And []: entities in both branches. Or []: entities in either branch.",
    "- QueryName []: their names. Count []: how many. QueryAttr [attribute]: the attribute's value.",
    "- SelectAmong [attribute, largest|smallest]: the entity with the largest or smallest value."
    " SelectBetween [attribute, greater|less]: which of two.",
    "- VerifyNum [number, op], VerifyYear [year, op], VerifyStr [text]: yes or no, about the value queried before.",
    "- QueryRelation []: how two entities are related."
    " QueryRelationQualifier [relation, qualifier]: a qualifier of the fact linking two entities.",
    "Answer with the program as JSON. Use only the labels offered for the question.",
)
# On a knowledge base of books, which no bench or test KB is: the model learns the form here and
# takes every label from the question's own list.
EXAMPLES = (
    ("Who wrote Dune?", [["Find", "Dune"], ["Relate", "author", "forward"], ["QueryName"]]),
    (
        "When was the author of Dune born?",
        [["Find", "Dune"], ["Relate", "author", "forward"], ["QueryAttr", "date of birth"]],
    ),
    (
        "How many novels did Frank Herbert write?",
        [["Find", "Frank Herbert"], ["Relate", "author", "backward"], ["FilterConcept", "novel"], ["Count"]],
    ),
    (
        "Which novels were published after 1990?",
        [["FindAll"], ["FilterYear", "publication date", "1990", ">"], ["FilterConcept", "novel"], ["QueryName"]],
    ),
    (
        "Which book by Frank Herbert has the most pages?",
        [["Find", "Frank Herbert"], ["Relate", "author", "backward"], ["SelectAmong", "number of pages", "largest"]],
    ),
    (
        "Does Dune have more than 500 pages?",
        [["Find", "Dune"], ["QueryAttr", "number of pages"], ["VerifyNum", "500", ">"]],
    ),
    (
        "Which writers were born in Paris or in London?",
        [
            ["Find", "Paris"],
            ["Relate", "place of birth", "backward"],
            ["Find", "London"],
            ["Relate", "place of birth", "backward"],
            ["Or"],
            ["FilterConcept", "writer"],
            ["QueryName"],
        ],
    ),
    (
        "Which books by Frank Herbert won the Hugo Award?",
        [
            ["Find", "Frank Herbert"],
            ["Relate", "author", "backward"],
            ["Find", "Hugo Award"],
            ["Relate", "award received", "backward"],
            ["And"],
            ["QueryName"],
        ],
    ),
    (
        "In which year did Dune win the Hugo Award?",
        [["Find", "Dune"], ["Find", "Hugo Award"], ["QueryRelationQualifier", "award received", "point in time"]],
    ),
    (
        "Which book received the Hugo Award in 1966?",
        [
            ["Find", "Hugo Award"],
            ["Relate", "award received", "backward"],
            ["QFilterYear", "point in time", "1966", "="],
            ["QueryName"],
        ],
    ),
)
SYSTEM = "\n".join(
    [*RULES, "", "Examples, on a knowledge base of books:"]
    + [f"Q: {question}\n{json.dumps({'program': program})}" for question, program in EXAMPLES]
)


@dataclass
class Vocabulary:
    """The labels and values a draft may use for one question, best first."""

    entities: list[str]
    concepts: list[str]
    relations: list[str]
    keys: list[str]
    qualifiers: list[str]
    values: dict[str, list[str]] = field(default_factory=dict)  # value type -> values written in the question

    def as_json(self) -> dict:
        return {
            "entities": self.entities,
            "concepts": self.concepts,
            "relations": self.relations,
            "attributes": self.keys,
            "qualifiers": self.qualifiers,
            "values": self.values,
        }


def _closest(ctx: QuestionContext, labels, k: int) -> list[str]:
    return sorted(dict.fromkeys(labels), key=lambda label: -ctx.similarity(label))[:k]


def vocabulary(ctx: QuestionContext) -> Vocabulary:
    """The retrieved candidates: what the parser's argument stage would consider first."""
    onto = ctx.onto
    keys = _closest(ctx, onto.attribute_keys, TOP_KEYS)
    numbers = numbers_in(ctx)
    quantities: list[str] = []
    for key in keys:
        if onto.key_type.get(key) == "quantity":
            unit = onto.key_unit.get(key, "1")
            quantities.extend(quantity_text(n, unit) for n in numbers)
    quantities.extend(quantity_text(n, "1") for n in numbers)
    years = [str(year) for year in cues.years_in(ctx.masked)]
    strings = [
        candidate.inputs[0]
        for key in keys
        if onto.key_type.get(key) == "string"
        for candidate in string_value_candidates(ctx, key)
    ]
    values = {
        "quantity": list(dict.fromkeys(quantities))[:MAX_VALUES],
        "year": years[:MAX_VALUES],
        "date": years[:MAX_VALUES],
        "string": list(dict.fromkeys(strings))[:MAX_VALUES],
    }
    return Vocabulary(
        entities=list(dict.fromkeys(m.entity_name for m in ctx.mentions)),
        concepts=_closest(ctx, onto.concepts.values(), TOP_CONCEPTS),
        relations=_closest(ctx, onto.relations, TOP_RELATIONS),
        keys=keys,
        qualifiers=_closest(ctx, onto.qualifier_keys, TOP_QUALIFIERS),
        values=values,
    )


def _role_choices(function: str, role: str, vocab: Vocabulary) -> list[str]:
    value_type = FUNCTION_VALUE_TYPE.get(next((s for s in FUNCTION_VALUE_TYPE if function.endswith(s)), ""), "")
    if role == "op":
        return list(OPS.get(function, COMPARE))
    if role == "direction":
        return ["forward", "backward"]
    if role in ("value", "qvalue"):
        if value_type:
            return vocab.values.get(value_type, [])
        return [v for values in vocab.values.values() for v in values]
    return {
        "name": vocab.entities,
        "concept": vocab.concepts,
        "relation": vocab.relations,
        "key": vocab.keys,
        "qkey": vocab.qualifiers,
    }[role]


def step_schema(function: str, vocab: Vocabulary) -> dict | None:
    """One step's shape, [function, inputs...], each input from its own list; None when some
    input has nothing to choose from (no number in the question, say)."""
    items: list[dict] = [{"const": function}]
    for role in FUNCTIONS[function].args:
        choices = _role_choices(function, role, vocab)
        if not choices:
            return None
        items.append({"enum": list(dict.fromkeys(choices))})
    return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}


def program_schema(vocab: Vocabulary) -> dict:
    shapes = [s for f in FUNCTIONS if f not in LEFT_OUT for s in [step_schema(f, vocab)] if s is not None]
    return {
        "type": "object",
        "properties": {"program": {"type": "array", "items": {"anyOf": shapes}, "minItems": 1, "maxItems": MAX_STEPS}},
        "required": ["program"],
        "additionalProperties": False,
    }


def draft_messages(question: str, vocab: Vocabulary) -> list[dict]:
    # The long, fixed part is the system message, so llama.cpp reuses its cached prompt; the
    # question's labels come last.
    offered = [
        ("entities", vocab.entities),
        ("concepts", vocab.concepts),
        ("relations", vocab.relations),
        ("attributes", vocab.keys),
        ("qualifiers", vocab.qualifiers),
    ]
    lines = [f"{name}: {'; '.join(labels)}" for name, labels in offered if labels]
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Labels for this question:\n" + "\n".join(lines) + f"\nQ: {question}"},
    ]


def with_dependencies(steps: list[list[str]]) -> list[dict] | None:
    """The model writes steps in order; their dependencies follow from KoPL's branch rule (each
    step reads the one before; Find and FindAll open a branch; a joining function reads the end of
    the branch before and the step before it). None when a step has nothing to read."""
    program: list[dict] = []
    branch_ends: list[int] = []
    for index, (function, *inputs) in enumerate(steps):
        if function in ("Find", "FindAll"):
            if index > 0:
                branch_ends.append(index - 1)
            deps: list[int] = []
        elif function in BINARY:
            if branch_ends:
                deps = [branch_ends.pop(), index - 1]
            elif index >= 2:  # "how far is X from its nearest city": Find, Relate, then both
                deps = [index - 2, index - 1]
            else:
                return None
        else:
            if index == 0:
                return None
            deps = [index - 1]
        program.append({"function": function, "dependencies": deps, "inputs": [str(v) for v in inputs]})
    return program


@dataclass
class Draft:
    program: list[dict] | None
    vocabulary: dict
    seconds: float
    error: str | None = None
    # The model gave no answer at all (server unreachable, timed out): no second opinion came back,
    # as opposed to one whose steps do not form a program or do not run.
    failed: bool = False

    def as_json(self) -> dict:
        return {
            "program": self.program,
            "vocabulary": self.vocabulary,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "failed": self.failed,
        }


_draft_backends: dict = {}


def drafting_backend():
    """The assistant model for drafts, without retries and with its own timeout: a draft is a
    second source, so a busy model server holds a draft job at most DRAFT_TIMEOUT seconds and
    then the draft fails and the parser's answer stands (the shared server's default is 120 s and
    two retries)."""
    from apps.inference.registry import model_for_role
    from apps.inference.services import load_backend

    spec = model_for_role("assistant")
    if spec.backend != "openai":
        return load_backend(spec)
    if spec not in _draft_backends:
        from apps.inference.backends.openai_backend import OpenAIBackend

        _draft_backends[spec] = OpenAIBackend(spec, timeout=DRAFT_TIMEOUT, max_retries=0)
    return _draft_backends[spec]


def draft_program(ctx: QuestionContext, backend) -> Draft:
    """Ask the assistant for a program under the grammar; the model's failure is a Draft with an
    error, never an exception: the parser's own answer still stands."""
    from apps.inference.backends.base import GenerationParams, InferenceError

    started = time.perf_counter()
    vocab = vocabulary(ctx)
    schema = program_schema(vocab)
    try:
        answer = backend.generate_json(
            draft_messages(ctx.question, vocab),
            schema=schema,
            params=GenerationParams(temperature=0, max_tokens=DRAFT_TOKENS),
        )
    except InferenceError as exc:
        logger.warning("KBQA draft failed: %s", exc)
        return Draft(None, vocab.as_json(), time.perf_counter() - started, str(exc)[:500], failed=True)
    program = with_dependencies(answer["program"])
    error = None if program else "the drafted steps do not form a program"
    return Draft(program, vocab.as_json(), time.perf_counter() - started, error)


# ---------------------------------------------------------------------------------------------
# When to draft, and the draft scored beside the parser's candidates

# nats: a rival program with another answer scored within e^1 = 2.7x of the best. Drafts have never
# turned a right answer wrong in the bench at any margin (bench/kbqa_eval.py --draft prints each
# threshold); a parser trained on fewer pairs (tests/kbqa/conftest.py) was wrong with rivals at
# 0.52 and 0.62 nats, and the draft fixed both, so the rule is looser than the bench's parser needs.
DRAFT_MARGIN = 1.0


def parser_unsure(parsed: ParseResult, onto: Ontology) -> str | None:
    """Why the parser's own answer needs a second source, or None when it does not. A question
    about something the KB holds nothing like gets none: a draft may only use the KB's labels."""
    if parsed.missing:
        return None
    if not parsed.complete:
        return "no complete program"
    if not parsed.answer_fits:
        return "its answer has the wrong type"
    if run(onto, parsed.program, strict=False) in (None, []):
        return "its program answers nothing"
    if parsed.margin is not None and parsed.margin < DRAFT_MARGIN:
        return f"a program with another answer scored within {parsed.margin:.2f}"
    return None


def _argument_score(ctx: QuestionContext, options: StepCandidates, function: str, inputs: list[str]) -> float:
    """The score the parser gives these inputs: the candidate's own when the argument stage
    listed it, else the similarity of each KB label among them (mentions for names)."""
    for candidate in options.kept + [c for c, _reason in options.pruned]:
        if candidate.inputs == inputs:
            return candidate.score
    labels = all_labels(ctx.onto)
    mentions = {m.entity_name: m.score for m in ctx.mentions}
    score = 1.0
    for value in inputs:
        if function == "Find":
            score *= mentions.get(value, MIN_SIMILARITY)
        elif value in labels:
            score *= ctx.similarity(value)
    return score


def _flip(inputs: list[str]) -> list[str]:
    return [inputs[0], "backward" if inputs[1] == "forward" else "forward"]


def score_program(
    ctx: QuestionContext, classifier: SketchClassifier, program: list[dict], prune: bool = True
) -> tuple[float, list[dict], Any, list[StepCandidates], bool] | None:
    """Execute a drafted program and score it as the parser scores its own: the same argument
    similarities, coverage of the question's words and answer-type check. Its sketch counts as
    likely as the parser's own first choice (the model vouches for it), weighed by the same
    question-form prior. A Relate that finds nothing is tried the other way round once (the
    model's weakest choice is the direction); a step that still finds nothing or fails rejects
    the draft (None). Returns (score, program as run, answer, step candidates, type fits)."""
    prior = sketch_prior(ctx.question, ctx.mentions)
    ranked = classifier.top(ctx.sketch_embedding, k=TOP_SKETCHES, prior=prior)
    top_probability = ranked[0][1] if ranked else 1e-6
    beam = Beam(0.0, [], [], set())
    shown: list[StepCandidates] = []
    find_order = 0
    steps: list[dict] = []
    for step in program:
        function, deps, inputs = step["function"], step["dependencies"], list(step["inputs"])
        if any(d >= len(steps) for d in deps):
            return None
        dependencies = [(d, *beam.results[d]) for d in deps]
        try:  # execution checks the dependencies' kinds before the argument stage reads them
            kind, result = execute_step(ctx.onto.engine, function, inputs, dependencies)
            if function == "Relate" and not result[0]:
                flipped = _flip(inputs)
                kind, result = execute_step(ctx.onto.engine, function, flipped, dependencies)
                inputs = flipped if result[0] else inputs
        except StepError:
            return None
        try:
            options = step_candidates(ctx, function, deps, beam, find_order, prune)
        except StepError:  # a function whose arguments the parser never fills (QFilterStr, ...)
            options = StepCandidates([], [], 0, 0)
        shown.append(options)
        if kind == "entities" and not result[0]:
            return None
        steps.append({"function": function, "dependencies": deps, "inputs": inputs})
        score = beam.score + math.log(max(_argument_score(ctx, options, function, inputs), MIN_SIMILARITY))
        used = beam.used_names | ({inputs[0]} if function == "Find" else set())
        beam = Beam(score, steps[:], beam.results + [(kind, result)], used)
        find_order += function == "Find"
    fits = cues.answer_fits(cues.expected_answer(ctx.question), *beam.results[-1])
    total = sketch_term(top_probability, prior(sketch_of(steps))) + beam.score + coverage(ctx, steps)
    if not fits:
        total += WRONG_TYPE
    if not fits_asked_class(ctx, beam):  # as the parser's own search ranks its programs
        total += WRONG_TYPE
    return total, steps, beam_answer(ctx.onto, beam), shown, fits


def apply_draft(
    parsed: ParseResult,
    ctx: QuestionContext,
    classifier: SketchClassifier,
    draft: Draft,
    reason: str,
    prune: bool = True,
) -> ParseResult:
    """Score a draft beside the parser's candidates (the parse is changed in place and returned):
    it replaces the parser's program only when it scores higher by the same scoring; otherwise it
    is listed among the alternatives. `parsed.draft` records what was offered and written."""
    onto = ctx.onto
    parsed.draft = {**draft.as_json(), "reason": reason}
    if draft.program is None:
        return parsed
    scored = score_program(ctx, classifier, draft.program, prune)
    if scored is None:
        parsed.draft["error"] = "the drafted program fails or finds nothing at some step"
        return parsed
    total, program, answer, shown, fits = scored
    entry = {"source": "draft", "sketch": sketch_of(program), "program": program, "score": round(total, 3)}
    entry["answer"] = answer
    parsed.draft.update(program=program, score=round(total, 3), answer=answer)
    # A draft that answers nothing never replaces a complete program (the parser is asked for a
    # second source for the same reason).
    if parsed.complete and (answer in (None, []) or parsed.score is not None and parsed.score >= total):
        parsed.alternatives.append(entry)
    else:
        if parsed.complete:
            mine = {"source": "parser", "sketch": sketch_of(parsed.program), "program": parsed.program}
            mine.update(score=round(parsed.score or 0.0, 3), answer=run(onto, parsed.program, strict=False))
            parsed.alternatives.append(mine)
        parsed.program, parsed.candidates = program, [s.as_json() for s in shown]
        parsed.complete, parsed.error, parsed.source = True, None, "draft"
        parsed.score, parsed.answer_fits, parsed.pruning = total, fits, pruning_summary(shown)
        parsed.sketches = [{"sketch": entry["sketch"], "probability": None}] + [
            s for s in parsed.sketches if s["sketch"] != entry["sketch"]
        ]
    parsed.alternatives.sort(key=lambda item: -item["score"])
    return parsed
