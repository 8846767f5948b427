from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from apps.accounts.api_area import area_auth
from apps.accounts.permissions import can_view_owned
from apps.jobs.models import JobStatus
from apps.tables import assistant, services, workbooks
from apps.tables.models import Sheet, SheetVersion, TableMessage

router = Router(tags=["tables"], auth=area_auth("tables"))  # errors: apps/core/errors.py


def owned_sheet(request, sheet_id: int) -> Sheet:
    sheet = Sheet.objects.select_related("workbook", "current_version").filter(pk=sheet_id).first()
    if sheet is None:
        raise HttpError(404, "No such sheet")
    try:
        services.get_owned_workbook(request.auth, sheet.workbook_id)
    except Http404:
        raise HttpError(404, "No such sheet") from None
    return sheet


def owned_message(request, message_id: int) -> TableMessage:
    message = TableMessage.objects.select_related("workbook", "job").filter(pk=message_id).first()
    if message is None or not can_view_owned(request.auth, message.workbook.owner_id):
        raise HttpError(404, "No such message")
    return message


def version_out(version: SheetVersion) -> dict:
    return {
        "id": version.pk,
        "number": version.number,
        "description": version.description,
        "parent": version.parent_id,
        "rows": version.row_count,
        "columns": version.columns,
        "created_at": version.created_at.isoformat(),
    }


def workbook_out(workbook) -> dict:
    return {
        "id": workbook.pk,
        "name": workbook.name,
        "kind": workbook.kind,
        "sheets": [
            {"id": s.pk, "name": s.name, "current_version": s.current_version_id} for s in workbook.sheets.all()
        ],
    }


def message_out(message: TableMessage) -> dict:
    """A turn as scripts see it: an honest status (a run that ended without an answer is
    `failed`, with its kind), what was printed, every candidate, and the failed first try."""
    result = message.result
    failure = result.get("failure") or {}
    output = result.get("output")
    if output and output.get("type") == "chart":
        output = {key: value for key, value in output.items() if key != "table"} | {
            "table": workbooks.display_table(output["table"])
        }
    return {
        "id": message.pk,
        "mode": message.mode,
        "requested_mode": result.get("requested_mode", message.mode),
        "status": message.job.status if message.job else JobStatus.SUCCEEDED,
        "failure_kind": failure.get("kind"),
        "failure": failure.get("words", ""),
        "job_id": message.job_id,
        "text": message.text,
        "code": message.code,
        "output": output,
        "stdout": (result.get("run") or {}).get("stdout", ""),
        "verified": result.get("verified"),
        "code_failure": result.get("code_failure"),
        "agreement": result.get("agreement"),
        "candidates": result.get("candidates", []),
        "chosen": result.get("chosen"),
        "agreeing": result.get("agreeing"),
        "first_attempt": result.get("first_attempt"),
        "error": message.error or (message.job.error if message.job else ""),
        "version": message.made_version_id,
        "stream_url": f"/ws/generations/{message.job_id}/?format=json"
        if message.job and message.job.kind == "tables.ask"
        else None,
    }


@router.post("/tables/workbooks", response={201: dict})
def upload_workbook(request, file: UploadedFile = File(...), name: str = Form("")):  # noqa: B008  (ninja's style)
    if file.size > settings.TABLES_MAX_UPLOAD_BYTES:
        raise HttpError(
            413,
            f"The upload is {file.size / 1e6:.1f} MB; the limit is {settings.TABLES_MAX_UPLOAD_BYTES / 1e6:.0f} MB.",
        )
    workbook = services.import_upload(request.auth, file.name, file.read(), name)
    return Status(201, workbook_out(workbook))


@router.get("/tables/workbooks", response=list[dict])
def list_workbooks(request):
    return [workbook_out(w) for w in request.auth.workbooks.prefetch_related("sheets")]


@router.get("/tables/sheets/{int:sheet_id}", response=dict)
def preview(request, sheet_id: int, version: int | None = None, page: int = 1):
    sheet = owned_sheet(request, sheet_id)
    chosen = get_object_or_404(SheetVersion, sheet=sheet, pk=version) if version else sheet.current_version
    frame = workbooks.load_version(chosen)
    start = (max(page, 1) - 1) * workbooks.PAGE_SIZE
    rows = frame.iloc[start : start + workbooks.PAGE_SIZE]
    return {
        "version": version_out(chosen),
        "page": page,
        "rows": workbooks.display_rows(rows),
    }


class AskIn(Schema):
    question: str
    mode: str = "auto"  # auto, text, code or both


class CodeIn(Schema):
    code: str


@router.post("/tables/sheets/{int:sheet_id}/ask", response={201: dict})
def ask(request, sheet_id: int, payload: AskIn):
    sheet = owned_sheet(request, sheet_id)
    return Status(201, message_out(assistant.ask(request.auth, sheet, payload.question, payload.mode)))


@router.post("/tables/sheets/{int:sheet_id}/run", response={201: dict})
def run_on_sheet(request, sheet_id: int, payload: CodeIn):
    """Run your own pandas code on the sheet's current version, no question needed."""
    sheet = owned_sheet(request, sheet_id)
    return Status(201, message_out(assistant.run_code_on_sheet(request.auth, sheet, payload.code)))


@router.get("/tables/messages/{int:message_id}", response=dict)
def get_message(request, message_id: int):
    return message_out(owned_message(request, message_id))


@router.post("/tables/messages/{int:message_id}/run", response={201: dict})
def run(request, message_id: int, payload: CodeIn):
    message = owned_message(request, message_id)
    return Status(201, message_out(assistant.run_edited_code(request.auth, message, payload.code)))


@router.get("/tables/sheets/{int:sheet_id}/versions", response=list[dict])
def versions(request, sheet_id: int):
    sheet = owned_sheet(request, sheet_id)
    return [{**version_out(v), "current": v.pk == sheet.current_version_id} for v in sheet.versions.all()]


@router.get("/tables/sheets/{int:sheet_id}/diff", response=dict)
def diff(request, sheet_id: int, a: int, b: int):
    sheet = owned_sheet(request, sheet_id)
    old = SheetVersion.objects.filter(sheet=sheet, pk=a).first()
    new = SheetVersion.objects.filter(sheet=sheet, pk=b).first()
    if old is None or new is None:
        raise HttpError(404, "No such version of this sheet")
    return workbooks.diff_frames(workbooks.load_version(old), workbooks.load_version(new))


@router.post("/tables/sheets/{int:sheet_id}/{action}", response=dict)
def undo_redo(request, sheet_id: int, action: str):
    sheet = owned_sheet(request, sheet_id)
    if action not in ("undo", "redo"):
        raise HttpError(404, "Unknown action")
    moved = services.undo(sheet) if action == "undo" else services.redo(sheet)
    if moved is None:
        raise HttpError(409, f"Nothing to {action}.")
    return version_out(moved)


@router.get("/tables/versions/{int:version_id}/download")
def download(request, version_id: int, format: str = "csv"):  # noqa: A002  (the query parameter's name)
    version = SheetVersion.objects.select_related("sheet__workbook").filter(pk=version_id).first()
    if version is None or not can_view_owned(request.auth, version.sheet.workbook.owner_id):
        raise HttpError(404, "No such version")
    frame = workbooks.load_version(version)
    if format == "xlsx":
        return HttpResponse(
            workbooks.export_xlsx(frame, version.sheet.name),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    return HttpResponse(workbooks.export_csv(frame), content_type="text/csv; charset=utf-8")
