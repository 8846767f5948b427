"""Reading uploaded workbooks within limits on what they expand to.

An XLSX file is a zip: a 1 MB upload can unpack to gigabytes. Before any XML is parsed,
the zip's directory is read and the workbook refused when its members' declared sizes add
up to more than TABLES_MAX_UNPACKED_BYTES or its sheets declare (in <dimension>) more than
TABLES_MAX_CELLS cells. The declared sizes bound what is actually read: Python's zipfile
stops at a member's declared size (and then fails its CRC), so a lying directory gains
nothing. The sheets are then streamed (openpyxl read_only) and the cell count is enforced
again while reading, for sheets that declare no dimension or a wrong one.

Values only: formulas give their cached values (data_only), external links are not loaded
(keep_links=False) and macros are dropped (keep_vba=False), so nothing in the upload is
evaluated, fetched or kept.
"""

import io
import re
import zipfile
from collections.abc import Iterator

import pandas as pd
from django.conf import settings

MAX_MEMBERS = 10_000
DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]{1,3})?(\d+)?(?::([A-Z]{1,3})(\d+))?"')


class WorkbookLimitError(ValueError):
    """The upload would expand past a limit; the message is for the user."""


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:,.1f} MB"


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:  # bytes: each letter is its code
        number = number * 26 + letter - 64
    return number


def declared_cells(head: bytes) -> int:
    """Cells in a worksheet's declared <dimension ref="A1:D20">, from the start of its XML; 0
    when it declares none."""
    match = DIMENSION.search(head)
    if match is None:
        return 0
    first_col, first_row, last_col, last_row = match.groups()
    if last_col is None:  # a single cell, "A1"
        return 1
    columns = _column_number(last_col) - _column_number(first_col or b"A") + 1
    rows = int(last_row) - int(first_row or 1) + 1
    return max(columns, 0) * max(rows, 0)


def check_archive(file_name: str, data: bytes, sheet_prefix: str = "xl/worksheets/", label: str = "XLSX") -> None:
    """Refuse an Office file (XLSX, DOCX) whose zip expands past the limits, reading only the
    zip's directory and the first bytes of each sheet. Raises WorkbookLimitError."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise WorkbookLimitError(f"{file_name} is not a readable {label} file (not a zip archive).") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise WorkbookLimitError(f"{file_name} has {len(members):,} parts; at most {MAX_MEMBERS:,} are read.")
        unpacked = sum(member.file_size for member in members)
        limit = settings.TABLES_MAX_UNPACKED_BYTES
        if unpacked > limit:
            raise WorkbookLimitError(
                f"{file_name} unpacks to {_megabytes(unpacked)}, more than the {_megabytes(limit)} allowed "
                f"(TABLES_MAX_UNPACKED_BYTES). Remove unused sheets or save it as CSV."
            )
        cells = 0
        for member in members:
            if member.filename.startswith(sheet_prefix) and member.filename.endswith(".xml"):
                try:
                    with archive.open(member) as stream:
                        cells += declared_cells(stream.read(4096))  # decompresses only this much
                except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                    raise WorkbookLimitError(f"{file_name} is not a readable {label} file ({exc}).") from None
        _check_cells(file_name, cells, declared=True)


def _check_cells(file_name: str, cells: int, declared: bool = False) -> None:
    limit = settings.TABLES_MAX_CELLS
    if cells > limit:
        verb = "declares" if declared else "has more than"
        raise WorkbookLimitError(
            f"{file_name} {verb} {cells:,} cells; the limit is {limit:,} (TABLES_MAX_CELLS). "
            "Upload fewer rows or columns, or split the workbook."
        )


def _sheet_rows(sheet, counter: list[int], file_name: str) -> Iterator[list]:
    for row in sheet.iter_rows(values_only=True):
        counter[0] += len(row)
        _check_cells(file_name, counter[0])
        yield list(row)


def _frame(rows: list[list]) -> pd.DataFrame:
    """First non-empty row as the header, as pandas.read_excel does; trailing empty rows and
    columns dropped (clean_frame drops the rest)."""
    while rows and all(value is None for value in rows[-1]):
        rows.pop()
    while rows and all(value is None for value in rows[0]):
        rows.pop(0)
    if not rows:
        return pd.DataFrame()
    width = max(len(row) for row in rows)
    rows = [row + [None] * (width - len(row)) for row in rows]
    header = ["" if value is None else str(value) for value in rows[0]]
    frame = pd.DataFrame(rows[1:], columns=range(width))
    frame.columns = header
    return frame.infer_objects()


def read_xlsx(file_name: str, data: bytes) -> dict[str, pd.DataFrame]:
    """Every sheet of an XLSX upload as a DataFrame (values only), within the limits.
    Raises WorkbookLimitError past a limit; openpyxl's own errors for a corrupt file."""
    from openpyxl import load_workbook

    check_archive(file_name, data)
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False, keep_vba=False)
    counter = [0]
    try:
        sheets = {}
        for sheet in book.worksheets:
            sheet.reset_dimensions()  # stream what is there, not what the file claims
            sheets[sheet.title] = _frame(list(_sheet_rows(sheet, counter, file_name)))
        return sheets
    finally:
        book.close()
