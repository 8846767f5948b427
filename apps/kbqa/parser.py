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

Reading the question is in apps.kbqa.reading, the argument candidates in apps.kbqa.arguments.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apps.inference.embeddings import embed
from apps.kbqa import cues
from apps.kbqa.arguments import Beam, StepCandidates, step_candidates
from apps.kbqa.kopl import FUNCTIONS, StepError, answer_of, execute_step
from apps.kbqa.ontology import Ontology, parse_sketch, run
from apps.kbqa.reading import (
    GREATER_CUES,
    LARGEST_CUES,
    LESS_CUES,
    MIN_SIMILARITY,
    NUMBER,
    SMALLEST_CUES,
    WORD,
    Mention,
    QuestionContext,
    coverage,
    delexicalize,
    has_cue,
    question_context,
    unmatched_phrase,
)
from apps.kbqa.sketches import SketchClassifier, fit_sketch_model

BEAM_WIDTH = 6
TOP_SKETCHES = 10  # sketches tried per question (most are cut by the bound in parse_question)
SKETCH_TEMPER = 0.5
WRONG_TYPE = math.log(0.01)
MAX_ALTERNATIVES = 4


# ---------------------------------------------------------------------------------------------
# Sketch parser (over the packaged all-MiniLM-L6-v2 embeddings of apps.inference.embeddings)


def train_sketch_classifier(questions: list[str], sketches: list[str], onto: Ontology) -> SketchClassifier:
    """Fit the sketch parser on (question, sketch) pairs of one KB, read through its ontology."""
    return fit_sketch_model(embed([delexicalize(q, onto) for q in questions]), sketches)


def search_sketch(ctx: QuestionContext, sketch: str, prune: bool) -> tuple[Beam | None, list[StepCandidates], int]:
    """Beam search for the arguments of one sketch. Returns the best complete beam (or None),
    the candidates of each step as seen by the leading beam, and how far the search got."""
    beams = [Beam(0.0, [], [], set())]
    shown: list[StepCandidates] = []
    find_order = 0
    steps = parse_sketch(sketch)
    # The second branch of an And is pruned as it is built: a set that shares nothing with the
    # first branch would make the intersection empty (step index -> the other branch's index).
    joins = {max(deps): min(deps) for function, deps in steps if function == "And" and len(deps) == 2}
    for index, (function, deps) in enumerate(steps):
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
                    if index in joins and kind == "entities":
                        other = beam.results[joins[index]][1]
                        if other and not set(result[0]) & set(other[0]):
                            continue
                else:
                    kind, result = FUNCTIONS[function].gives, None
                used = beam.used_names | ({candidate.inputs[0]} if function == "Find" else set())
                grown.append(Beam(score, beam.steps + [new_step], beam.results + [(kind, result)], used))
        if function == "Find":
            find_order += 1
        if not grown:
            return None, shown, index
        if prune and index == len(steps) - 1:
            for finished in grown:
                if not fits_asked_class(ctx, finished):
                    finished.score += WRONG_TYPE
        grown.sort(key=lambda b: -b.score)
        beams = grown[:BEAM_WIDTH]
    return beams[0], shown, len(shown)


ASKED_CLASS = re.compile(
    r"^\s*(?:(?:in|on|at|from|to|of)\s+)?(?:which|what)\s+([\w'-]+(?:\s+[\w'-]+){0,2})", re.IGNORECASE
)


def asked_class(ctx: QuestionContext) -> str | None:
    """The KB concept a "which <class> ..." question names as its answer's class ("Which currency
    is used in ...", "On which continent is ..."), or None."""
    match = ASKED_CLASS.search(ctx.masked)
    if match is None:
        return None
    words = match.group(1).casefold().split()
    names = {name.casefold(): name for name in ctx.onto.concepts.values()}
    for n in range(len(words), 0, -1):
        gram = " ".join(words[:n])
        for form in (gram, gram[:-3] + "y" if gram.endswith("ies") else gram, gram.rstrip("s"), gram[:-2]):
            if form in names:
                return names[form]
    return None


def fits_asked_class(ctx: QuestionContext, beam: Beam) -> bool:
    """Whether a program that names entities names some of the class the question asks for
    ("which currency ...": a currency, not the country it is used in). Other programs fit."""
    if ctx.asked_members is None:
        name = asked_class(ctx)
        ctx.asked_members = set().union(*(ctx.onto.members[c] for c, n in ctx.onto.concepts.items() if n == name))
    if not ctx.asked_members or not beam.steps:
        return True
    last = beam.steps[-1]
    if last["function"] not in ("QueryName", "SelectAmong", "SelectBetween"):
        # A value, a count or a relation's name is not a member of the class asked for.
        return last["function"].startswith("Verify")
    sets = [beam.results[d][1] for d in last["dependencies"] if beam.results[d][0] == "entities"]
    if any(result is None for result in sets):
        return True
    members = ctx.asked_members
    return any(eid in members for result in sets for eid in result[0])


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
    # The chosen program's total score, and how far ahead it is of the best program with another
    # answer (None: no rival was in reach); the drafting step reads both.
    score: float | None = None
    margin: float | None = None
    answer_fits: bool = False
    source: str = "parser"  # or "draft": the assistant model's program won
    # Other complete programs, best first: {"source", "sketch", "program", "score", "answer"}.
    alternatives: list[dict] = field(default_factory=list)
    draft: dict | None = None  # what the assistant was offered and wrote, when it was asked
    missing: str | None = None  # what the question asks about that the KB holds nothing like

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
            "score": None if self.score is None else round(self.score, 3),
            "margin": None if self.margin is None else round(self.margin, 3),
            "answer_fits": self.answer_fits,
            "source": self.source,
            "alternatives": self.alternatives,
            "draft": self.draft,
            "missing": self.missing,
        }

    @classmethod
    def from_json(cls, data: dict) -> ParseResult:
        """A saved parse (as_json) again, so a draft run later is scored against it."""
        return cls(
            sketches=list(data.get("sketches", [])),
            program=list(data.get("program", [])),
            candidates=list(data.get("candidates", [])),
            complete=bool(data.get("complete")),
            error=data.get("error"),
            pruning=dict(data.get("pruning", {})),
            seconds=float(data.get("seconds", 0.0)),
            mentions=list(data.get("mentions", [])),
            score=data.get("score"),
            margin=data.get("margin"),
            answer_fits=bool(data.get("answer_fits", True)),
            source=data.get("source", "parser"),
            alternatives=list(data.get("alternatives", [])),
            draft=data.get("draft"),
            missing=data.get("missing"),
        )


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
    unnamed = question  # years inside an entity's name ("2001: A Space Odyssey") are not filters
    for mention in sorted((m for m in mentions if m.start >= 0), key=lambda m: -m.start):
        unnamed = unnamed[: mention.start] + " | " + unnamed[mention.end :]
    dated = bool(cues.years_in(unnamed))
    # A capitalized word past the first that no entity name covers ("Xyzzyville") names
    # something this KB does not hold: a program that finds nothing by name cannot answer it.
    unknown_name = not any(m.start < 0 for m in mentions) and any(
        word[:1].isupper() for word in WORD.findall(unnamed)[1:]
    )
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
            factor *= 0.05  # "in 1999", "before 1980": a year is a time filter, not an amount
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
        if unknown_name and not finds:
            return 0.0
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
    """Question -> KoPL program, trying the top sketches and keeping the best-scoring program.
    A question about something the KB does not hold at all ("which river ..." on a KB without
    rivers) gets no program: any program would answer about something else."""
    started = time.perf_counter()
    ctx = question_context(question, onto)
    parsed = search_programs(ctx, classifier, prune, started)
    missing = unmatched_phrase(ctx)
    if missing:
        if parsed.complete:
            best = {"source": "parser", "sketch": parsed.sketches[0]["sketch"], "program": parsed.program}
            best.update(score=round(parsed.score or 0.0, 3), answer=run(onto, parsed.program, strict=False))
            parsed.alternatives.insert(0, best)
        parsed.program, parsed.complete, parsed.missing = [], False, missing
        parsed.error = (
            f"This knowledge base has no {missing}: no concept, relation or attribute in it is close to "
            f"'{missing}', so no program can answer the question."
        )
    parsed.seconds = time.perf_counter() - started
    return parsed


def search_programs(ctx: QuestionContext, classifier: SketchClassifier, prune: bool, started: float) -> ParseResult:
    """The beam search over the top sketches: the best complete program with its rivals, or the
    best partial program when none completes."""
    question, onto = ctx.question, ctx.onto
    prior = sketch_prior(question, ctx.mentions)
    ranked = classifier.top(ctx.sketch_embedding, k=TOP_SKETCHES, prior=prior)
    expected = cues.expected_answer(question)
    best: tuple[float, str, Beam, list[StepCandidates]] | None = None
    partial: tuple[int, str, list[StepCandidates]] | None = None
    found: list[tuple[float, str, Beam]] = []
    skipped_bound: float | None = None  # the best score a sketch left unsearched could reach
    for sketch, probability in ranked:
        sketch_score = sketch_term(probability, prior(sketch))
        # A beam scores at most ~0 (log similarities, coverage), so a sketch whose score alone
        # is below the best total cannot win: skip its search.
        if prior(sketch) == 0.0:
            continue
        if best is not None and sketch_score + 0.1 < best[0]:
            skipped_bound = max(skipped_bound or -math.inf, sketch_score + 0.1)
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
            total += WRONG_TYPE  # an answer of the wrong type ranks lower
        found.append((total, sketch, beam))
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
    total, sketch, beam, shown = best
    sketches.sort(key=lambda s: s["sketch"] != sketch)  # the chosen sketch first
    answer = beam_answer(onto, beam) if prune else None
    alternatives = []
    rival = skipped_bound
    for other_total, other_sketch, other in sorted(found, key=lambda item: -item[0]):
        if other is beam:
            continue
        other_answer = beam_answer(onto, other) if prune else None
        if other_answer != answer:
            rival = max(rival if rival is not None else -math.inf, other_total)
        if len(alternatives) < MAX_ALTERNATIVES:
            alternatives.append(
                {
                    "source": "parser",
                    "sketch": other_sketch,
                    "program": other.steps,
                    "score": round(other_total, 3),
                    "answer": other_answer,
                }
            )
    return ParseResult(
        sketches,
        beam.steps,
        [s.as_json() for s in shown],
        True,
        None,
        pruning_summary(shown),
        time.perf_counter() - started,
        mentions,
        score=total,
        margin=None if rival is None else total - rival,
        answer_fits=cues.answer_fits(expected, *beam.results[-1]) if prune else True,
        alternatives=alternatives,
    )


def sketch_term(probability: float, prior_weight: float) -> float:
    """A sketch's share of a program's score. The sketch classifier was trained on another KB's
    questions: its share of the probability is tempered (the question-form prior is not), so that
    how well the KB's labels fit the question's words can outvote it."""
    return SKETCH_TEMPER * math.log(max(probability, 1e-6)) + (1 - SKETCH_TEMPER) * math.log(max(prior_weight, 1e-9))


def beam_answer(onto: Ontology, beam: Beam) -> Any:
    """The answer of a finished beam, from the results its pruned search already computed."""
    if not beam.results or beam.results[-1][1] is None:
        return None
    try:
        return answer_of(onto.engine, *beam.results[-1])
    except (StepError, IndexError, KeyError):
        return None


def pruning_summary(shown: list[StepCandidates]) -> dict:
    before = sum(s.before for s in shown)
    after = sum(s.after for s in shown)
    return {"before": before, "after": after, "cut": round(1 - after / before, 3) if before else 0.0}
