"""KBQA work that runs in the `cpu` workers: training the sketch parser, asking questions,
evaluating in-KB and transfer accuracy. Views and the API only create rows and jobs."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.jobs.models import Job
from apps.jobs.services import create_job, report_progress
from apps.kbqa import parser as kbqa_parser
from apps.kbqa import services
from apps.kbqa.models import KBImport, KnowledgeBase, ParserEvaluation, ParserModel, Question
from apps.kbqa.questions import Ontology, generate_examples, load_ontology, run

MAX_QUESTION_CHARS = 500
DEFAULT_TRAIN_PAIRS = 2400
TEST_SHARE = 0.15
DEFAULT_EVAL_PAIRS = 200


def clean_train_params(params: dict) -> dict:
    try:
        pairs = int(params.get("pairs", DEFAULT_TRAIN_PAIRS))
    except (TypeError, ValueError):
        raise ValidationError("pairs must be a whole number") from None
    if not 200 <= pairs <= 20000:
        raise ValidationError("pairs must be between 200 and 20000")
    return {"parser_id": int(params["parser_id"]), "pairs": pairs, "seed": int(params.get("seed", 0))}


def clean_evaluate_params(params: dict) -> dict:
    try:
        pairs = int(params.get("pairs", DEFAULT_EVAL_PAIRS))
    except (TypeError, ValueError):
        raise ValidationError("pairs must be a whole number") from None
    if not 10 <= pairs <= 2000:
        raise ValidationError("pairs must be between 10 and 2000")
    targets = [str(name) for name in params.get("targets", [])]
    return {"evaluation_id": int(params["evaluation_id"]), "pairs": pairs, "targets": targets}


# ---------------------------------------------------------------------------------------------
# Training


def request_training(user, source: KnowledgeBase, pairs: int = DEFAULT_TRAIN_PAIRS, seed: int = 0) -> ParserModel:
    with transaction.atomic():
        parser = ParserModel.objects.create(source_kb=source, created_by=user)
        parser.job = create_job(user, "kbqa.train", {"parser_id": parser.pk, "pairs": pairs, "seed": seed})
        parser.save(update_fields=["job"])
    return parser


def train(job: Job) -> dict:
    parser = ParserModel.objects.select_related("source_kb").get(pk=job.params["parser_id"])
    fit_parser(parser, job.params["pairs"], job.params["seed"], lambda f, m: report_progress(job, f, m))
    return {"parser": parser.pk, **{k: parser.metrics[k] for k in ("pairs", "sketch_accuracy", "seconds")}}


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


def ready_parser(preferred: int | None = None) -> ParserModel | None:
    # Without its pairs, weights and source KB's content (megabytes): pages only name it, and
    # the classifier cache reads the weights once per process.
    parsers = ParserModel.objects.ready().select_related("source_kb").defer("dataset", "classifier", "source_kb__data")
    if preferred is not None:
        return parsers.filter(pk=preferred).first()
    return parsers.first()


_classifiers: dict[int, kbqa_parser.SketchClassifier] = {}


def load_classifier(parser: ParserModel) -> kbqa_parser.SketchClassifier:
    if parser.pk not in _classifiers:
        _classifiers[parser.pk] = kbqa_parser.SketchClassifier.from_json(parser.classifier)
    return _classifiers[parser.pk]


# ---------------------------------------------------------------------------------------------
# Asking


def check_question(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError("Type a question first.")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValidationError(f"The question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}.")
    return text


def ask(user, kb: KnowledgeBase, text: str, parser: ParserModel | None = None) -> Question:
    """Save the question and enqueue its parse (the worker also runs the program)."""
    text = check_question(text)
    with transaction.atomic():
        question = Question.objects.create(owner=user, kb=kb, text=text, parser=parser)
        question.job = create_job(user, "kbqa.ask", {"question_id": question.pk})
        question.save(update_fields=["job"])
    return question


def answer(job: Job) -> dict:
    # The KB's content and the parser's pairs are megabytes; the engine and classifier caches
    # hold what a parse needs, so a question does not read them each time.
    question = (
        Question.objects.select_related("kb", "parser")
        .defer("kb__data", "parser__dataset")
        .get(pk=job.params["question_id"])
    )
    parser = question.parser if question.parser and question.parser.trained_at else ready_parser()
    if parser is None:
        # The first question on a fresh install trains the default parser (about 20 s).
        report_progress(job, 0.05, "No sketch parser yet: training one on this knowledge base first")
        parser = ParserModel.objects.create(source_kb=question.kb, created_by=question.owner)
        fit_parser(parser, progress=lambda f, m: report_progress(job, 0.05 + 0.5 * f, m))
    report_progress(job, 0.6, f"Parsing with the parser trained on {parser.source_kb.name}")
    onto = load_ontology(question.kb)
    parsed = kbqa_parser.parse_question(question.text, onto, load_classifier(parser))
    report_progress(job, 0.9, "Running the program")
    execution = services.execute_program(question.kb, parsed.program) if parsed.program else {}
    question.parser = parser
    question.parse = parsed.as_json()
    question.program = parsed.program
    question.execution = execution
    question.error = parsed.error or ""
    question.save()
    return {"question": question.pk, "answer": execution.get("answer"), "complete": parsed.complete}


def rerun(user, original: Question, program: list) -> Question:
    """An edited program runs at once (KoPL execution needs no model) as a new history entry."""
    execution = services.execute_program(original.kb, program)
    return Question.objects.create(
        owner=user,
        kb=original.kb,
        text=original.text,
        parser=original.parser,
        edited_from=original,
        parse=original.parse,
        program=program,
        execution=execution,
        error=execution.get("error") or "",
    )


def question_json(question: Question) -> dict:
    parse = question.parse or {}
    execution = question.execution or {}
    return {
        "id": question.pk,
        "kb": question.kb.name,
        "question": question.text,
        "status": question.status,
        "job": question.job_id,
        "parser": question.parser_id,
        "edited_from": question.edited_from_id,
        "sketch": parse.get("sketch", ""),
        "sketches": parse.get("sketches", []),
        "program": question.program,
        "candidates": parse.get("candidates", []),
        "pruning": parse.get("pruning", {}),
        "complete": parse.get("complete"),
        "steps": execution.get("steps", []),
        "answer": execution.get("answer"),
        "error": question.failure or execution.get("error") or None,
        "created_at": question.created_at.isoformat(),
    }


# ---------------------------------------------------------------------------------------------
# Evaluation


def request_evaluation(user, parser: ParserModel, targets: list[str], pairs: int = DEFAULT_EVAL_PAIRS):
    missing = [name for name in targets if not KnowledgeBase.objects.filter(name=name).exists()]
    if missing:
        raise ValidationError(f"No knowledge base named {', '.join(missing)}.")
    with transaction.atomic():
        evaluation = ParserEvaluation.objects.create(parser=parser)
        evaluation.job = create_job(
            user, "kbqa.evaluate", {"evaluation_id": evaluation.pk, "pairs": pairs, "targets": targets}
        )
        evaluation.save(update_fields=["job"])
    return evaluation


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


def evaluate(job: Job) -> dict:
    evaluation = ParserEvaluation.objects.select_related("parser__source_kb").get(pk=job.params["evaluation_id"])
    parser = evaluation.parser
    names = [parser.source_kb.name] + [n for n in job.params["targets"] if n != parser.source_kb.name]
    onto_by_kb = {name: load_ontology(services.get_kb(name)) for name in names}
    classifier = load_classifier(parser)
    sets = list(evaluation_sets(parser, onto_by_kb, job.params["pairs"]))
    results = []
    for index, (name, setting, wordings, examples) in enumerate(sets):
        for prune in (True, False):
            report_progress(
                job,
                (2 * index + (0 if prune else 1)) / (2 * len(sets)),
                f"{setting} on {name} ({wordings}), pruning {'on' if prune else 'off'}",
            )
            scores = score_examples(examples, onto_by_kb[name], classifier, prune)
            results.append({"kb": name, "setting": setting, "wordings": wordings, "pruning": prune, **scores})
    evaluation.results = results
    evaluation.save(update_fields=["results"])
    return {"evaluation": evaluation.pk, "rows": len(results)}


# ---------------------------------------------------------------------------------------------
# Importing a KB from an upload


def request_import(user, name: str, title: str, file_name: str, content: bytes) -> KBImport:
    """Check what can be checked at once (name, encoding), then import in a worker."""
    services.check_kb_name(name)
    if KnowledgeBase.objects.filter(name=name).exists():
        raise ValidationError(f"A knowledge base named {name!r} already exists.")
    try:
        raw = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"The file is not UTF-8 text (byte {exc.start} cannot be read).") from None
    with transaction.atomic():
        upload = KBImport.objects.create(
            owner=user, name=name, title=title[:200], file_name=file_name[:255], size=len(content), raw=raw
        )
        upload.job = create_job(user, "kbqa.import", {"import_id": upload.pk})
        upload.save(update_fields=["job"])
    return upload


def run_import(job: Job) -> dict:
    upload = KBImport.objects.get(pk=job.params["import_id"])
    report_progress(job, 0.05, f"Reading {upload.file_name or upload.name}")
    try:
        data = json.loads(upload.raw)
    except json.JSONDecodeError as exc:
        return _import_failed(upload, [f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"])
    report_progress(job, 0.25, "Validating concepts, entities, attributes and relations")
    errors = services.validate_kb(data)
    if errors:
        return _import_failed(upload, errors)
    report_progress(job, 0.55, "Normalizing and storing")
    try:
        kb = services.import_kb(upload.owner, upload.name, data, title=upload.title, source=upload.file_name)
    except ValidationError as exc:  # the name was taken meanwhile
        return _import_failed(upload, exc.messages)
    report_progress(job, 0.85, "Indexing for questions")
    load_ontology(kb)
    upload.kb, upload.raw = kb, ""
    upload.save(update_fields=["kb", "raw"])
    return {"kb": kb.name, "stats": kb.stats}


def _import_failed(upload: KBImport, errors: list[str]) -> dict:
    upload.errors = errors[: services.MAX_ERRORS]
    upload.save(update_fields=["errors"])
    # The job itself succeeded: the outcome (a list of problems) is on the import row.
    return {"kb": None, "errors": len(errors)}
