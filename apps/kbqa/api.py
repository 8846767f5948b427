"""KBQA JSON API: knowledge bases, asking questions, KoPL execution, parsers and evaluation."""

import time
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from apps.accounts.api_area import area_auth
from apps.accounts.permissions import can_view_owned, has_role
from apps.core.errors import Conflict
from apps.kbqa import kopl, services, training
from apps.kbqa.models import KnowledgeBase, ParserEvaluation, ParserModel, Question

router = Router(tags=["kbqa"], auth=area_auth("kbqa"))  # errors: apps/core/errors.py
MAX_WAIT_SECONDS = 60.0


class KBIn(Schema):
    name: str
    title: str = ""
    description: str = ""
    source: str = ""
    data: Any  # KoPL JSON; validated by kb_format.validate_kb for path-named errors


class KBOut(Schema):
    name: str
    title: str
    description: str
    source: str
    stats: dict
    created_at: datetime
    updated_at: datetime


class ErrorsOut(Schema):
    detail: str
    errors: list[str] = []


class ExecuteIn(Schema):
    kb: str
    program: list[Any]  # each step checked by kopl.execute_program, so errors name the step


class ExecuteOut(Schema):
    steps: list[dict]
    answer: Any
    error: str | None


def kb_out(kb: KnowledgeBase) -> dict:
    return {field: getattr(kb, field) for field in KBOut.model_fields}


@router.get("/kbqa/kbs", response=list[KBOut])
def list_kbs(request):
    return [kb_out(kb) for kb in services.list_kbs()]


@router.post("/kbqa/kbs", response={201: KBOut, 409: ErrorsOut, 422: ErrorsOut})
def import_kb(request, payload: KBIn):
    """Import a KB in KoPL JSON. 422 lists every problem with the JSON path of the bad element."""
    services.check_kb_name(payload.name)
    if KnowledgeBase.objects.filter(name=payload.name).exists():
        raise Conflict(f"A knowledge base named {payload.name!r} already exists.")
    try:
        kb = services.import_kb(
            request.auth,
            payload.name,
            payload.data,
            title=payload.title,
            description=payload.description,
            source=payload.source,
        )
    except ValidationError as exc:  # the name was taken meanwhile (KBValidationError is a 422 with paths)
        raise Conflict(" ".join(exc.messages)) from None
    return Status(201, kb_out(kb))


@router.get("/kbqa/kbs/{name}", response=KBOut)
def get_kb(request, name: str):
    kb = services.list_kbs().filter(name=name).first()
    if kb is None:
        raise HttpError(404, f"No knowledge base named {name!r}.")
    return kb_out(kb)


@router.post("/kbqa/execute", response=ExecuteOut)
def execute(request, payload: ExecuteIn):
    """Run a KoPL program step by step. A wrong function or argument is reported at its step
    (`steps[i].error`, and `error` overall) with status 200: the run itself is the answer."""
    kb = services.list_kbs().filter(name=payload.kb).first()  # the engine cache holds the content
    if kb is None:
        raise HttpError(404, f"No knowledge base named {payload.kb!r}.")
    return kopl.execute_program(kb, payload.program)


# ---------------------------------------------------------------------------------------------
# Asking, parsers and evaluation


class AskIn(Schema):
    kb: str
    question: str
    parser: int | None = None
    wait: float = 20.0  # seconds to wait for the worker; 0 returns at once with status "pending"


class RerunIn(Schema):
    program: list[Any]


class TrainIn(Schema):
    source: str
    pairs: int = training.DEFAULT_TRAIN_PAIRS


class EvaluateIn(Schema):
    targets: list[str] = []
    pairs: int = services.DEFAULT_EVAL_PAIRS


def wait_for(question_id: int, seconds: float) -> Question:
    """The parse runs in a cpu worker; the API waits for it up to `seconds`."""
    deadline = time.monotonic() + max(0.0, min(seconds, MAX_WAIT_SECONDS))
    while True:
        question = Question.objects.select_related("kb", "job", "draft_job").get(pk=question_id)
        if question.status != Question.Status.PENDING or time.monotonic() >= deadline:
            return question
        time.sleep(0.2)


def owned_question(request, question_id: int) -> Question:
    question = Question.objects.select_related("kb", "job", "draft_job").filter(pk=question_id).first()
    if question is None or not can_view_owned(request.auth, question.owner_id):
        raise HttpError(404, "No such question.")
    return question


def require_parser_role(request) -> None:
    if not has_role(request.auth, "researcher", "admin"):
        raise HttpError(403, "Only researchers and admins can train or evaluate parsers.")


@router.post("/kbqa/ask", response={200: dict, 202: dict, 422: ErrorsOut})
def ask(request, payload: AskIn):
    """Parse a question into a KoPL program (sketch, then arguments from the KB with ontology
    pruning) and run it. Returns {sketch, program, candidates, steps, answer, source, sources,
    draft_status, ...}; status 202 with "status": "pending" if the worker has not finished within
    `wait` seconds (poll GET /api/kbqa/questions/{id}). The parser's answer never waits for the
    assistant model: when the parser was unsure, "draft_status" is "pending" while the model drafts
    a second opinion, then "done" ("source" says whether the draft replaced the answer) or
    "failed" (the parser's answer stands; "draft_error" says why)."""
    kb = services.list_kbs().filter(name=payload.kb).first()
    if kb is None:
        raise HttpError(404, f"No knowledge base named {payload.kb!r}.")
    parser = None
    if payload.parser is not None:
        parser = services.ready_parser(payload.parser)
        if parser is None:
            raise HttpError(404, f"No trained parser #{payload.parser}.")
    question = services.ask(request.auth, kb, payload.question, parser)
    question = wait_for(question.pk, payload.wait)
    data = services.question_json(question)
    return Status(202 if data["status"] == "pending" else 200, data)


@router.get("/kbqa/questions", response=list[dict])
def list_questions(request):
    questions = Question.objects.filter(owner=request.auth).select_related("kb", "job", "draft_job")[:100]
    return [services.question_json(q) for q in questions]


@router.get("/kbqa/questions/{question_id}", response=dict)
def get_question(request, question_id: int):
    return services.question_json(owned_question(request, question_id))


@router.post("/kbqa/questions/{question_id}/rerun", response=dict)
def rerun_question(request, question_id: int, payload: RerunIn):
    """Run an edited program for a question; the result is a new entry in the history."""
    question = owned_question(request, question_id)
    return services.question_json(services.rerun(request.auth, question, payload.program))


def parser_out(parser: ParserModel) -> dict:
    latest = parser.evaluations.first()
    return {
        "id": parser.pk,
        "source": parser.source_kb.name,
        "status": parser.status,
        "job": parser.job_id,
        "metrics": parser.metrics,
        "created_at": parser.created_at.isoformat(),
        "latest_evaluation": latest.pk if latest else None,
    }


@router.get("/kbqa/parsers", response=list[dict])
def list_parsers(request):
    parsers = ParserModel.objects.select_related("source_kb", "job").defer("dataset", "classifier")[:50]
    return [parser_out(p) for p in parsers]


@router.post("/kbqa/parsers", response={202: dict})
def train_parser(request, payload: TrainIn):
    """Generate question-program pairs from a source KB and train a sketch parser (a job)."""
    require_parser_role(request)
    kb = services.list_kbs().filter(name=payload.source).first()
    if kb is None:
        raise HttpError(404, f"No knowledge base named {payload.source!r}.")
    parser = services.request_training(request.auth, kb, payload.pairs)
    return Status(202, parser_out(parser))


@router.get("/kbqa/parsers/{parser_id}/dataset", response=list[dict])
def parser_dataset(request, parser_id: int):
    """The generated question-program pairs a parser was trained on (split: train / test)."""
    parser = ParserModel.objects.filter(pk=parser_id).only("dataset").first()
    if parser is None:
        raise HttpError(404, f"No parser #{parser_id}.")
    return parser.dataset


@router.post("/kbqa/parsers/{parser_id}/evaluations", response={202: dict})
def evaluate_parser(request, parser_id: int, payload: EvaluateIn):
    """In-KB and transfer accuracy, with and without ontology pruning (a job)."""
    require_parser_role(request)
    parser = services.ready_parser(parser_id)
    if parser is None:
        raise HttpError(404, f"No trained parser #{parser_id}.")
    evaluation = services.request_evaluation(request.auth, parser, payload.targets, payload.pairs)
    return Status(202, {"id": evaluation.pk, "job": evaluation.job_id, "parser": parser.pk})


@router.get("/kbqa/evaluations/{evaluation_id}", response=dict)
def get_evaluation(request, evaluation_id: int):
    evaluation = ParserEvaluation.objects.filter(pk=evaluation_id).first()
    if evaluation is None:
        raise HttpError(404, f"No evaluation #{evaluation_id}.")
    return {
        "id": evaluation.pk,
        "parser": evaluation.parser_id,
        "job": evaluation.job_id,
        "results": evaluation.results,
        "created_at": evaluation.created_at.isoformat(),
    }
