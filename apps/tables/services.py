"""Tables actions on workbooks: create one, save a change as a new version, undo, redo, and
who may open one. Reading and writing the data is in workbooks.py; answering questions about a
sheet (model, sandbox) is in assistant.py."""

import pandas as pd
from django.db import transaction
from django.http import Http404

from apps.accounts.permissions import can_view_owned
from apps.tables import workbooks
from apps.tables.models import Sheet, SheetVersion, Workbook


def create_workbook(
    owner,
    name: str,
    sheets: list[tuple[str, pd.DataFrame]],
    kind: str = "spreadsheet",
    context: str = "",
    source_name: str = "",
    contexts: list[str] | None = None,
) -> Workbook:
    """`contexts`: the text around each sheet's table, for tables read from a document."""
    contexts = contexts or []
    with transaction.atomic():
        workbook = Workbook.objects.create(
            owner=owner, name=name[:200] or "Workbook", kind=kind, context=context, source_name=source_name[:255]
        )
        for position, (sheet_name, frame) in enumerate(sheets):
            sheet = Sheet.objects.create(
                workbook=workbook,
                name=str(sheet_name)[:120],
                position=position,
                context=contexts[position] if position < len(contexts) else "",
            )
            save_version(sheet, frame, "Uploaded" if source_name else "Pasted")
    return workbook


def import_upload(owner, file_name: str, data: bytes, name: str = "") -> Workbook:
    """An uploaded file as a new workbook: a spreadsheet's sheets, or a document's tables (a
    sheet each, with the text around it; answered in words by default). The whole file is read
    and checked first: nothing is saved when it is refused (TableInputError)."""
    if workbooks.is_document(file_name):
        tables = workbooks.read_document(file_name, data)
        return create_workbook(
            owner,
            name or file_name,
            [(table.name, table.frame) for table in tables],
            kind="document",
            source_name=file_name,
            contexts=[table.context for table in tables],
        )
    return create_workbook(owner, name or file_name, workbooks.read_upload(file_name, data), source_name=file_name)


def save_version(
    sheet: Sheet, frame: pd.DataFrame, description: str, parent: SheetVersion | None = None
) -> SheetVersion:
    """Every change is a new version; the data file is written once and never changed."""
    given = sheet
    with transaction.atomic():
        sheet = Sheet.objects.select_for_update().get(pk=sheet.pk)
        number = (sheet.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        path = workbooks.write_version_file(sheet, number, frame)
        version = SheetVersion.objects.create(
            sheet=sheet,
            number=number,
            parent=parent if parent is not None else sheet.current_version,
            description=description[:300],
            row_count=len(frame),
            columns=workbooks.column_profile(frame),
            data_path=str(path),
        )
        sheet.current_version = version
        sheet.save(update_fields=["current_version"])
    given.current_version = version
    return version


def undo(sheet: Sheet) -> SheetVersion | None:
    sheet.refresh_from_db(fields=["current_version"])
    current = sheet.current_version
    if current is None or current.parent is None:
        return None
    Sheet.objects.filter(pk=sheet.pk).update(current_version=current.parent)
    sheet.current_version = current.parent
    return current.parent


def redo(sheet: Sheet) -> SheetVersion | None:
    sheet.refresh_from_db(fields=["current_version"])
    current = sheet.current_version
    child = current.children.order_by("-number").first() if current else None
    if child is None:
        return None
    Sheet.objects.filter(pk=sheet.pk).update(current_version=child)
    sheet.current_version = child
    return child


def get_owned_workbook(user, workbook_id: int) -> Workbook:
    workbook = Workbook.objects.filter(pk=workbook_id).first()
    if workbook is None or not can_view_owned(user, workbook.owner_id):
        raise Http404("No such workbook")
    return workbook
