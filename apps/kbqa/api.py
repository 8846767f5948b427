"""KBQA JSON API: import and list knowledge bases, run KoPL programs."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from apps.accounts.permissions import can_access_area
from apps.kbqa import services
from apps.kbqa.models import KnowledgeBase

router = Router(tags=["kbqa"])


class KBIn(Schema):
    name: str
    title: str = ""
    description: str = ""
    source: str = ""
    data: Any  # KoPL JSON; validated by services.validate_kb for path-named errors


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
    errors: list[str]


class ExecuteIn(Schema):
    kb: str
    program: list[Any]  # each step checked by services.execute_program, so errors name the step


class ExecuteOut(Schema):
    steps: list[dict]
    answer: Any
    error: str | None


def require_kbqa_area(request) -> None:
    if not can_access_area(request.auth, "kbqa"):
        raise HttpError(403, "Your role cannot use KBQA.")


def kb_out(kb: KnowledgeBase) -> dict:
    return {field: getattr(kb, field) for field in KBOut.model_fields}


@router.get("/kbqa/kbs", response=list[KBOut])
def list_kbs(request):
    require_kbqa_area(request)
    return [kb_out(kb) for kb in services.list_kbs()]


@router.post("/kbqa/kbs", response={201: KBOut, 409: ErrorsOut, 422: ErrorsOut})
def import_kb(request, payload: KBIn):
    """Import a KB in KoPL JSON. 422 lists every problem with the JSON path of the bad element."""
    require_kbqa_area(request)
    try:
        services.check_kb_name(payload.name)
    except ValidationError as exc:
        return Status(422, {"detail": exc.messages[0], "errors": exc.messages})
    if KnowledgeBase.objects.filter(name=payload.name).exists():
        message = f"A knowledge base named {payload.name!r} already exists."
        return Status(409, {"detail": message, "errors": [message]})
    try:
        kb = services.import_kb(
            request.auth,
            payload.name,
            payload.data,
            title=payload.title,
            description=payload.description,
            source=payload.source,
        )
    except services.KBValidationError as exc:
        return Status(422, {"detail": f"The knowledge base has {len(exc.errors)} error(s).", "errors": exc.errors})
    except ValidationError as exc:  # the name was taken meanwhile
        return Status(409, {"detail": exc.messages[0], "errors": exc.messages})
    return Status(201, kb_out(kb))


@router.get("/kbqa/kbs/{name}", response=KBOut)
def get_kb(request, name: str):
    require_kbqa_area(request)
    kb = services.list_kbs().filter(name=name).first()
    if kb is None:
        raise HttpError(404, f"No knowledge base named {name!r}.")
    return kb_out(kb)


@router.post("/kbqa/execute", response=ExecuteOut)
def execute(request, payload: ExecuteIn):
    """Run a KoPL program step by step. A wrong function or argument is reported at its step
    (`steps[i].error`, and `error` overall) with status 200: the run itself is the answer."""
    require_kbqa_area(request)
    try:
        kb = services.get_kb(payload.kb)
    except KnowledgeBase.DoesNotExist:
        raise HttpError(404, f"No knowledge base named {payload.kb!r}.") from None
    return services.execute_program(kb, payload.program)
