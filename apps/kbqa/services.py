"""KBQA actions: import and look up knowledge bases, train a parser, ask a question, re-run an
edited program, evaluate a parser, import an upload. Views, the API and the Celery tasks
(apps.kbqa.tasks) call these; the job bodies (train, answer, evaluate, run_import) run in workers."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from apps.jobs.models import Job
from apps.jobs.services import JobFailed, create_job, report_progress
from apps.kbqa import drafting, training
from apps.kbqa import parser as kbqa_parser
from apps.kbqa.kb_format import MAX_ERRORS, KBValidationError, content_hash, kb_stats, normalize_kb, validate_kb
from apps.kbqa.kopl import execute_program
from apps.kbqa.models import KBImport, KnowledgeBase, ParserEvaluation, ParserModel, Question
from apps.kbqa.ontology import load_ontology
from apps.kbqa.reading import question_context

# ---------------------------------------------------------------------------------------------
# Import and lookup


def check_kb_name(name: str) -> str:
    slug = slugify(name)
    if not slug or slug != name:
        raise ValidationError(f"A KB name must be a slug (lowercase letters, digits, hyphens), e.g. {slug or 'geo'!r}.")
    return slug


@transaction.atomic
def import_kb(
    owner,
    name: str,
    data: Any,
    *,
    title: str = "",
    description: str = "",
    source: str = "",
    replace: bool = False,
) -> KnowledgeBase:
    """Validate, normalize and store a KB. Raises KBValidationError (path-named errors) or
    ValidationError (bad or taken name; `replace=True` overwrites, for the build commands)."""
    check_kb_name(name)
    errors = validate_kb(data)
    if errors:
        raise KBValidationError(errors)
    normalized = normalize_kb(data)
    existing = KnowledgeBase.objects.select_for_update().filter(name=name).first()
    if existing is not None and not replace:
        raise ValidationError(f"A knowledge base named {name!r} already exists.")
    kb = existing or KnowledgeBase(name=name)
    kb.title = title or kb.title or name
    kb.description = description
    kb.source = source
    if existing is None:
        kb.owner = owner
    kb.data = normalized
    kb.stats = kb_stats(normalized)
    kb.content_hash = content_hash(normalized)
    kb.save()
    from apps.kbqa.summary import refresh_summary  # it reads the KB through the question generator

    refresh_summary(kb)  # pages read counts, schema and examples from here, never the JSON
    return kb


def list_kbs():
    """All KBs without their (large) content. KBs are shared reading material for every role."""
    return KnowledgeBase.objects.defer("data").select_related("owner")


def get_kb(name: str) -> KnowledgeBase:
    """A KB with its content; KnowledgeBase.DoesNotExist when absent."""
    return KnowledgeBase.objects.get(name=name)


MAX_QUESTION_CHARS = 500
DEFAULT_EVAL_PAIRS = 200


def clean_train_params(params: dict) -> dict:
    try:
        pairs = int(params.get("pairs", training.DEFAULT_TRAIN_PAIRS))
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


def request_training(
    user, source: KnowledgeBase, pairs: int = training.DEFAULT_TRAIN_PAIRS, seed: int = 0
) -> ParserModel:
    with transaction.atomic():
        parser = ParserModel.objects.create(source_kb=source, created_by=user)
        parser.job = create_job(user, "kbqa.train", {"parser_id": parser.pk, "pairs": pairs, "seed": seed})
        parser.save(update_fields=["job"])
    return parser


def train(job: Job) -> dict:
    parser = ParserModel.objects.select_related("source_kb").get(pk=job.params["parser_id"])
    training.fit_parser(parser, job.params["pairs"], job.params["seed"], lambda f, m: report_progress(job, f, m))
    return {"parser": parser.pk, **{k: parser.metrics[k] for k in ("pairs", "sketch_accuracy", "seconds")}}


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
        training.fit_parser(parser, progress=lambda f, m: report_progress(job, 0.05 + 0.5 * f, m))
    report_progress(job, 0.6, f"Parsing with the parser trained on {parser.source_kb.name}")
    onto = load_ontology(question.kb)
    parsed = kbqa_parser.parse_question(question.text, onto, load_classifier(parser))
    reason = drafting.parser_unsure(parsed, onto)
    if reason:
        parsed.draft = {"reason": reason}  # filled in by the draft job
    report_progress(job, 0.9, "Running the program")
    execution = execute_program(question.kb, parsed.program) if parsed.program else {}
    question.parser = parser
    question.parse = parsed.as_json()
    question.program = parsed.program
    question.execution = execution
    question.error = parsed.error or ""
    with transaction.atomic():
        # The answer is saved now and shown at once; when the parser is unsure, the assistant
        # model's second opinion runs afterwards in a job of its own (interactive queue), and the
        # page says so from the moment the answer appears.
        if reason:
            question.draft_job = create_job(question.owner, "kbqa.draft", {"question_id": question.pk})
        question.save()
    return {"question": question.pk, "answer": execution.get("answer"), "complete": parsed.complete, "draft": reason}


def draft(job: Job) -> dict:
    """The `kbqa.draft` job: the assistant model drafts a program for a question the parser was
    unsure of; the draft is executed and scored beside the parser's candidates by the parser's
    own scoring, and replaces the saved answer only when it scores higher. A draft the model could
    not write (server down, timed out) fails the job: the page says so and the parser's answer
    stands."""
    question = (
        Question.objects.select_related("kb", "parser")
        .defer("kb__data", "parser__dataset")
        .get(pk=job.params["question_id"])
    )
    parsed = kbqa_parser.ParseResult.from_json(question.parse)
    reason = (parsed.draft or {}).get("reason") or "asked for"
    report_progress(job, 0.1, "Reading the question against the knowledge base")
    onto = load_ontology(question.kb)
    ctx = question_context(question.text, onto)
    report_progress(job, 0.2, "The assistant model is drafting a program")
    drafted = drafting.draft_program(ctx, drafting.drafting_backend())
    if drafted.failed:
        parsed.draft = {**drafted.as_json(), "reason": reason}
        Question.objects.filter(pk=question.pk).update(parse=parsed.as_json())
        raise JobFailed(f"The assistant model gave no draft: {drafted.error}", {"question": question.pk})
    report_progress(job, 0.8, "Running and scoring the draft beside the parser's candidates")
    drafting.apply_draft(parsed, ctx, load_classifier(question.parser), drafted, reason)
    with transaction.atomic():
        question = Question.objects.select_for_update().get(pk=question.pk)
        if parsed.source == "draft":
            question.program = parsed.program
            question.execution = execute_program(question.kb, parsed.program)
            question.error = question.execution.get("error") or ""
        question.parse = parsed.as_json()
        question.save(update_fields=["parse", "program", "execution", "error"])
    return {"question": question.pk, "source": parsed.source, "draft_seconds": round(drafted.seconds, 3)}


def rerun(user, original: Question, program: list) -> Question:
    """An edited program runs at once (KoPL execution needs no model) as a new history entry."""
    execution = execute_program(original.kb, program)
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
        # Which source wrote the program ("parser", or "draft": the assistant model's), the other
        # complete programs with their scores and answers, and the draft when one was asked for.
        "source": parse.get("source", "parser"),
        "alternatives": parse.get("alternatives", []),
        "draft": parse.get("draft"),
        # none (the parser was sure), pending (the assistant model is drafting), done (scored
        # beside the parser's candidates; `source` says which won) or failed (`draft_error`).
        "draft_status": question.draft_status,
        "draft_error": question.draft_error or None,
        "sources": sorted({parse.get("source", "parser")} | {alt["source"] for alt in parse.get("alternatives", [])}),
        "steps": execution.get("steps", []),
        "answer": execution.get("answer"),
        # What the question asks about that the KB holds nothing like ("river"): no program ran,
        # and `error` says the KB has no such thing.
        "missing": parse.get("missing"),
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


def evaluate(job: Job) -> dict:
    evaluation = ParserEvaluation.objects.select_related("parser__source_kb").get(pk=job.params["evaluation_id"])
    parser = evaluation.parser
    names = [parser.source_kb.name] + [n for n in job.params["targets"] if n != parser.source_kb.name]
    onto_by_kb = {name: load_ontology(get_kb(name)) for name in names}
    classifier = load_classifier(parser)
    sets = list(training.evaluation_sets(parser, onto_by_kb, job.params["pairs"]))
    results = []
    for index, (name, setting, wordings, examples) in enumerate(sets):
        for prune in (True, False):
            report_progress(
                job,
                (2 * index + (0 if prune else 1)) / (2 * len(sets)),
                f"{setting} on {name} ({wordings}), pruning {'on' if prune else 'off'}",
            )
            scores = training.score_examples(examples, onto_by_kb[name], classifier, prune)
            results.append({"kb": name, "setting": setting, "wordings": wordings, "pruning": prune, **scores})
    evaluation.results = results
    evaluation.save(update_fields=["results"])
    return {"evaluation": evaluation.pk, "rows": len(results)}


# ---------------------------------------------------------------------------------------------
# Importing a KB from an upload


def request_import(user, name: str, title: str, file_name: str, content: bytes) -> KBImport:
    """Check what can be checked at once (name, encoding), then import in a worker."""
    check_kb_name(name)
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
    errors = validate_kb(data)
    if errors:
        return _import_failed(upload, errors)
    report_progress(job, 0.55, "Normalizing and storing")
    try:
        kb = import_kb(upload.owner, upload.name, data, title=upload.title, source=upload.file_name)
    except ValidationError as exc:  # the name was taken meanwhile
        return _import_failed(upload, exc.messages)
    report_progress(job, 0.85, "Indexing for questions")
    load_ontology(kb)
    upload.kb, upload.raw = kb, ""
    upload.save(update_fields=["kb", "raw"])
    return {"kb": kb.name, "stats": kb.stats}


def _import_failed(upload: KBImport, errors: list[str]) -> dict:
    upload.errors = errors[:MAX_ERRORS]
    upload.save(update_fields=["errors"])
    # The job itself succeeded: the outcome (a list of problems) is on the import row.
    return {"kb": None, "errors": len(errors)}
