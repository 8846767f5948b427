"""Fitting the sketch parser on pairs generated from its source KB, and scoring a parser on gold
pairs (in-KB and transfer, with and without pruning): the work behind the train and evaluate jobs
and bench/kbqa_eval.py."""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from apps.kbqa import parser as kbqa_parser
from apps.kbqa.models import ParserModel
from apps.kbqa.ontology import Ontology, load_ontology, run
from apps.kbqa.questions import generate_examples

DEFAULT_TRAIN_PAIRS = 2400
TEST_SHARE = 0.15


def _no_progress(fraction: float, message: str) -> None:
    return None


def fit_parser(
    parser: ParserModel,
    pairs: int = DEFAULT_TRAIN_PAIRS,
    seed: int = 0,
    progress: Callable[[float, str], None] = _no_progress,
) -> ParserModel:
    """Generate pairs from the parser's source KB, hold some out, train, measure, save."""
    started = time.perf_counter()
    progress(0.02, f"Reading the ontology of {parser.source_kb.name}")
    onto = load_ontology(parser.source_kb)
    report = generate_examples(
        onto,
        pairs,
        seed=seed,
        progress=lambda f: progress(0.05 + 0.35 * f, "Generating question-program pairs"),
        wordings="train",
    )
    examples = report.examples
    random.Random(seed).shuffle(examples)
    test_size = max(1, int(len(examples) * TEST_SHARE))
    test, training = examples[:test_size], examples[test_size:]
    progress(0.45, f"Training the sketch parser on {len(training)} pairs")
    classifier = kbqa_parser.train_sketch_classifier([e.question for e in training], [e.sketch for e in training], onto)
    progress(0.85, "Checking it on the held-out pairs")
    delexicalized = [kbqa_parser.delexicalize(e.question, onto) for e in test]
    probabilities = classifier.predict(kbqa_parser.embed(delexicalized))
    predicted = [classifier.classes[i] for i in probabilities.argmax(axis=1)]
    correct = sum(p == e.sketch for p, e in zip(predicted, test, strict=True))
    dataset = [{**e.as_json(), "split": "test"} for e in test] + [{**e.as_json(), "split": "train"} for e in training]
    parser.classifier = classifier.as_json()
    parser.dataset = dataset
    parser.metrics = {
        "pairs": len(examples),
        "train_size": len(training),
        "test_size": len(test),
        "sketches": len(classifier.classes),
        "sketch_accuracy": round(correct / len(test), 4),
        "per_template": dict(Counter(e.template for e in examples)),
        "templates_not_supported": report.failed_templates,
        "seconds": round(time.perf_counter() - started, 1),
    }
    parser.trained_at = timezone.now()
    parser.save()
    return parser


def score_examples(
    examples: list[dict], onto: Ontology, classifier: kbqa_parser.SketchClassifier, prune: bool
) -> dict[str, Any]:
    """Sketch, program and answer accuracy, latency and pruning figures on gold pairs."""
    sketch_ok = program_ok = answer_ok = complete = 0
    latencies, before, after = [], [], []
    for example in examples:
        parsed = kbqa_parser.parse_question(example["question"], onto, classifier, prune=prune)
        latencies.append(parsed.seconds)
        before.append(parsed.pruning.get("before", 0))
        after.append(parsed.pruning.get("after", 0))
        sketch_ok += parsed.sketches[0]["sketch"] == example["sketch"] if parsed.sketches else 0
        program_ok += parsed.program == example["program"]
        complete += parsed.complete
        if parsed.complete:
            answer_ok += run(onto, parsed.program, strict=False) == example["answer"]
    n = max(len(examples), 1)
    latencies.sort()
    return {
        "n": len(examples),
        "sketch_accuracy": round(sketch_ok / n, 4),
        "program_accuracy": round(program_ok / n, 4),
        "answer_accuracy": round(answer_ok / n, 4),
        "complete": round(complete / n, 4),
        "latency_mean": round(statistics.fmean(latencies), 4) if latencies else 0.0,
        "latency_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 4) if latencies else 0.0,
        "candidates_before": round(statistics.fmean(before), 1) if before else 0.0,
        "candidates_after": round(statistics.fmean(after), 1) if after else 0.0,
    }


def evaluation_sets(parser: ParserModel, onto_by_kb: dict[str, Ontology], pairs: int, seed: int = 7):
    """(kb name, setting, wordings, examples): the source KB's held-out pairs, fresh pairs in
    held-out wordings, and for each target KB pairs generated there (never seen in training)."""
    source = parser.source_kb.name
    held_out = [e for e in parser.dataset if e["split"] == "test"][:pairs]
    yield source, "in-KB", "trained wordings", held_out
    fresh = generate_examples(onto_by_kb[source], pairs, seed=seed + 1, wordings="heldout").examples
    yield source, "in-KB", "held-out wordings", [e.as_json() for e in fresh]
    for name, onto in onto_by_kb.items():
        if name == source:
            continue
        for wordings in ("train", "heldout"):
            examples = generate_examples(onto, pairs, seed=seed, wordings=wordings).examples
            label = "trained wordings" if wordings == "train" else "held-out wordings"
            yield name, "transfer", label, [e.as_json() for e in examples]
