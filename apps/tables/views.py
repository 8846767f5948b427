from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from apps.accounts.permissions import area_required
from apps.tables import assistant, services, workbooks
from apps.tables.models import Sheet, SheetVersion, TableMessage
from apps.tables.sandbox import table_from_json

CODE_FORMATTER = HtmlFormatter(cssclass="code", nowrap=False)


def int_or_none(value) -> int | None:
    """A query or form id as an int; junk is treated as absent (a 404, not a crash)."""
    return int(value) if isinstance(value, str) and value.isdigit() else None


def upload_too_large(request) -> str | None:
    """Checked from the header, before the body is read."""
    limit = settings.TABLES_MAX_UPLOAD_BYTES
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        return f"The upload is {length / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB."
    return None


@area_required("tables")
def workbook_list(request):
    if request.method == "POST":
        too_large = upload_too_large(request)
        if too_large:
            messages.error(request, too_large)
            return redirect("tables:list")
        try:
            if request.FILES.get("file"):
                upload = request.FILES["file"]
                name = request.POST.get("name", "")
                workbook = services.import_upload(request.user, upload.name, upload.read(), name)
            else:
                frame = workbooks.parse_pasted(request.POST.get("pasted", ""))
                workbook = services.create_workbook(
                    request.user,
                    request.POST.get("name") or "Pasted table",
                    [("Table", frame)],
                    kind="document",
                    context=request.POST.get("context", "")[:5000],
                )
        except workbooks.TableInputError as exc:
            messages.error(request, str(exc))
            return redirect("tables:list")
        return redirect("tables:workbook", workbook_id=workbook.pk)
    owned = request.user.workbooks.prefetch_related("sheets")
    return render(
        request,
        "tables/workbook_list.html",
        {"workbooks": owned, "limit_mb": settings.TABLES_MAX_UPLOAD_BYTES // 10**6},
    )


def sheet_context(request, workbook, sheet: Sheet) -> dict:
    version_id = int_or_none(request.GET.get("version"))
    version = sheet.versions.filter(pk=version_id).first() if version_id else sheet.current_version
    frame = workbooks.load_version(version)
    page = Paginator(range(len(frame)), workbooks.PAGE_SIZE).get_page(request.GET.get("page"))
    rows = frame.iloc[page.object_list.start : page.object_list.stop] if len(frame) else frame
    return {
        "workbook": workbook,
        "sheet": sheet,
        "version": version,
        "page": page,
        "columns": version.columns,
        "rows": workbooks.display_rows(rows),
        "versions": sheet.versions.order_by("-number"),
        "sheets": workbook.sheets.all(),
        "chat": [render_message_context(m) for m in workbook.messages.filter(sheet=sheet)],
        "other_sheets": Sheet.objects.filter(workbook__owner=workbook.owner)
        .exclude(pk=sheet.pk)
        .select_related("workbook"),
    }


@area_required("tables")
def workbook_detail(request, workbook_id: int):
    workbook = services.get_owned_workbook(request.user, workbook_id)
    sheet = workbook.sheets.filter(pk=int_or_none(request.GET.get("sheet"))).first() or workbook.sheets.first()
    if sheet is None:
        raise Http404("This workbook has no sheets")
    context = sheet_context(request, workbook, sheet)
    if request.htmx and request.GET.get("part") == "table":
        return render(request, "tables/workbook.html#sheet-table", context)
    return render(request, "tables/workbook.html", context)


def render_message_context(message: TableMessage) -> dict:
    code_html = highlight(message.code, PythonLexer(), CODE_FORMATTER) if message.code else ""
    output = message.result.get("output") or {}
    # A result table, or the aggregated table a chart was drawn from.
    table = workbooks.display_table(output["table"], rows=20) if output.get("type") in ("table", "chart") else None
    pending = message.job is not None and not message.job.is_finished
    chosen = message.result.get("chosen")
    others = [
        {**candidate, "number": number + 1, "code_html": highlight(candidate["code"], PythonLexer(), CODE_FORMATTER)}
        for number, candidate in enumerate(message.result.get("candidates", []))
        if number != chosen
    ]
    return {
        "message": message,
        "code_html": code_html,
        "output": output,
        "table": table,
        "pending": pending,
        "others": others,
        "failure": message.result.get("failure"),
    }


def get_owned_message(user, message_id: int) -> TableMessage:
    message = get_object_or_404(TableMessage.objects.select_related("workbook", "job", "sheet"), pk=message_id)
    services.get_owned_workbook(user, message.workbook_id)
    return message


@require_POST
@area_required("tables")
def ask(request, workbook_id: int):
    workbook = services.get_owned_workbook(request.user, workbook_id)
    sheet = get_object_or_404(Sheet, pk=int_or_none(request.POST.get("sheet")), workbook=workbook)
    try:
        reply = assistant.ask(request.user, sheet, request.POST.get("question", ""), request.POST.get("mode", "auto"))
    except ValidationError as exc:
        return render(request, "tables/workbook.html#ask-error", {"error": " ".join(exc.messages)})
    question = workbook.messages.filter(role="user").order_by("-pk").first()
    return render(
        request,
        "tables/workbook.html#new-turn",
        {"turns": [render_message_context(question), render_message_context(reply)]},
    )


@area_required("tables")
def message_detail(request, message_id: int):
    message = get_owned_message(request.user, message_id)
    if request.GET.get("poll") and message.job is not None and not message.job.is_finished:
        # Nothing to swap yet (htmx leaves the turn alone on 204): the token stream inside it
        # keeps its one socket. Re-rendering it here opened a second socket on every poll,
        # and each token then arrived once per socket ("importimport pandas pandas").
        return HttpResponse(status=204)
    response = render(request, "tables/workbook.html#chat-message", render_message_context(message))
    if request.GET.get("poll") and message.made_version_id:
        response["HX-Trigger"] = "tables-sheet-changed"  # the sheet panel reloads its table
    return response


@require_POST
@area_required("tables")
def message_run(request, message_id: int):
    message = get_owned_message(request.user, message_id)
    try:
        reply = assistant.run_edited_code(request.user, message, request.POST.get("code", ""))
    except ValidationError as exc:
        return render(request, "tables/workbook.html#ask-error", {"error": " ".join(exc.messages)})
    return render(request, "tables/workbook.html#new-turn", {"turns": [render_message_context(reply)]})


@area_required("tables")
def message_chart(request, message_id: int, image_format: str):
    message = get_owned_message(request.user, message_id)
    spec = (message.result.get("output") or {}).get("spec")
    if not spec or message.based_on is None:
        raise Http404("No chart")
    if image_format == "png":
        output = message.result["output"]
        data = table_from_json(output["table"]) if "table" in output else None
        image = (
            assistant.charts.draw(data, spec, "png")
            if data is not None
            else assistant.draw_chart(workbooks.load_version(message.based_on), spec, "png")
        )
        response = HttpResponse(image, content_type="image/png")
        response["Content-Disposition"] = f'attachment; filename="chart-{message.pk}.png"'
        return response
    return HttpResponse(message.result.get("chart_svg", ""), content_type="image/svg+xml")


def get_owned_sheet(user, sheet_id: int) -> Sheet:
    sheet = get_object_or_404(Sheet.objects.select_related("workbook", "current_version"), pk=sheet_id)
    services.get_owned_workbook(user, sheet.workbook_id)
    return sheet


@require_POST
@area_required("tables")
def undo_redo(request, sheet_id: int, action: str):
    sheet = get_owned_sheet(request.user, sheet_id)
    moved = services.undo(sheet) if action == "undo" else services.redo(sheet)
    if moved is None:
        messages.info(request, f"Nothing to {action}.")
    else:
        messages.success(request, f"{action.capitalize()}: now at version {moved.number}.")
    return redirect(f"/tables/{sheet.workbook_id}/?sheet={sheet.pk}")


@area_required("tables")
def version_diff(request, sheet_id: int):
    sheet = get_owned_sheet(request.user, sheet_id)
    new = get_object_or_404(SheetVersion, sheet=sheet, pk=int_or_none(request.GET.get("b")) or sheet.current_version_id)
    old_id = int_or_none(request.GET.get("a"))
    old = get_object_or_404(SheetVersion, sheet=sheet, pk=old_id) if old_id else new.parent
    if old is None:
        raise Http404("The first version has nothing to compare with")
    diff = workbooks.diff_frames(workbooks.load_version(old), workbooks.load_version(new))
    return render(request, "tables/diff.html", {"sheet": sheet, "old": old, "new": new, "diff": diff})


@area_required("tables")
def version_download(request, version_id: int, file_format: str):
    version = get_object_or_404(SheetVersion.objects.select_related("sheet"), pk=version_id)
    services.get_owned_workbook(request.user, version.sheet.workbook_id)
    frame = workbooks.load_version(version)
    name = f"{version.sheet.name}-v{version.number}"
    if file_format == "xlsx":
        body = workbooks.export_xlsx(frame, version.sheet.name)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body, content_type = workbooks.export_csv(frame), "text/csv; charset=utf-8"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}.{file_format}"'
    return response


@area_required("tables")
def merge(request, sheet_id: int):
    sheet = get_owned_sheet(request.user, sheet_id)
    other = get_owned_sheet(request.user, int_or_none(request.GET.get("other") or request.POST.get("other")))
    left, right = workbooks.load_version(sheet.current_version), workbooks.load_version(other.current_version)
    if request.method == "POST":
        try:
            assistant.merge_sheets(sheet, other, request.POST.get("key", ""), request.POST.get("how", "left"))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Merged {other.name} into {sheet.name} as a new version.")
        return redirect(f"/tables/{sheet.workbook_id}/?sheet={sheet.pk}")
    return render(
        request,
        "tables/merge.html",
        {"sheet": sheet, "other": other, "candidates": assistant.propose_merge_keys(left, right)},
    )
