"""Workbook I/O: reading uploads and pasted tables into typed frames, the rows pages show,
version data files, diffs between versions and safe exports. The actions that change
workbooks (create, save a version, undo, redo) are in services.py."""

import csv
import html.parser
import io
import re
import uuid
from pathlib import Path

import pandas as pd
from django.conf import settings

from apps.tables.documents import DocumentError, DocumentTable, read_docx, read_pdf
from apps.tables.models import Sheet, SheetVersion
from apps.tables.sandbox import table_from_json, table_to_json
from apps.tables.xlsx import WorkbookLimitError, read_xlsx

UPLOAD_TYPES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".xlsx": "xlsx", ".docx": "docx", ".pdf": "pdf"}
DOCUMENT_TYPES = ("docx", "pdf")
MAX_CELLS = 5_000_000
PAGE_SIZE = 50


class TableInputError(ValueError):
    """Bad input, with a message for the user."""


# ---- reading --------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 first (with or without BOM); otherwise detect the encoding, or say we could not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise TableInputError("The file is not UTF-8 and its encoding could not be detected. Save it as UTF-8.")
    return str(best)


def is_document(file_name: str) -> bool:
    """A DOCX or PDF: its tables are document tables, each with the text around it."""
    return UPLOAD_TYPES.get(Path(file_name).suffix.lower()) in DOCUMENT_TYPES


def read_document(file_name: str, data: bytes) -> list[DocumentTable]:
    """Every table of a DOCX or text-based PDF, cleaned, each with the text around it."""
    if not data:
        raise TableInputError(f"{file_name} is empty.")
    try:
        tables = read_docx(file_name, data) if file_name.lower().endswith(".docx") else read_pdf(file_name, data)
    except DocumentError as exc:
        raise TableInputError(str(exc)) from None
    cleaned = []
    for table in tables:
        try:
            table.frame = clean_frame(table.frame)
        except TableInputError:
            continue  # a table of empty cells: the others still count
        cleaned.append(table)
    if not cleaned:
        raise TableInputError(f"{file_name}: every table is empty.")
    return cleaned


def read_upload(file_name: str, data: bytes) -> list[tuple[str, pd.DataFrame]]:
    suffix = Path(file_name).suffix.lower()
    if suffix not in UPLOAD_TYPES:
        raise TableInputError(f"{file_name}: unsupported file type. Upload CSV, TSV, XLSX, DOCX or PDF.")
    if not data:
        raise TableInputError(f"{file_name} is empty.")
    if is_document(file_name):
        return [(table.name, table.frame) for table in read_document(file_name, data)]
    stem = Path(file_name).stem[:100] or "Sheet1"
    if UPLOAD_TYPES[suffix] == "xlsx":
        try:
            sheets = read_xlsx(file_name, data)  # size and cell limits before and while parsing; values only
        except WorkbookLimitError as exc:
            raise TableInputError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001  (openpyxl raises many types for a corrupt file)
            raise TableInputError(f"{file_name} is not a readable XLSX file ({type(exc).__name__}).") from None
        frames = [(name, frame) for name, frame in sheets.items() if not frame.dropna(how="all").empty]
        if not frames:
            raise TableInputError(f"{file_name}: every sheet is empty.")
        return [(name, clean_frame(frame)) for name, frame in frames]
    text = decode_text(data)
    delimiter = "\t" if UPLOAD_TYPES[suffix] == "tsv" else sniff_delimiter(text)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TableInputError(f"{file_name} could not be read as a table: {exc}") from None
    return [(stem, clean_frame(frame))]


def sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


class _HTMLTableParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self.cell is not None and self.rows:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data) -> None:
        if self.cell is not None:
            self.cell.append(data)


def parse_pasted(text: str) -> pd.DataFrame:
    """A table copied from a document: markdown, HTML or tab-separated text."""
    text = text.strip()
    if not text:
        raise TableInputError("Nothing was pasted.")
    if "<table" in text.lower():
        parser = _HTMLTableParser()
        parser.feed(text)
        rows = [row for row in parser.rows if row]
    elif text.startswith("|") or re.search(r"^\s*\|?\s*:?-{3,}", text, re.MULTILINE):
        rows = []
        for line in text.splitlines():
            line = line.strip()
            if not line or re.fullmatch(r"\|?[\s:\-|]+\|?", line):
                continue  # the |---|---| separator
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    else:
        delimiter = "\t" if "\t" in text else sniff_delimiter(text)
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if len(rows) < 2:
        raise TableInputError("A pasted table needs a header row and at least one data row.")
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    frame = pd.DataFrame(rows[1:], columns=rows[0])
    return clean_frame(frame.replace("", pd.NA))


def clean_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Usable headers and inferred types. Refuses empty tables."""
    frame = frame.dropna(how="all").dropna(axis=1, how="all")
    if frame.empty:
        raise TableInputError("The table is empty.")
    if frame.size > MAX_CELLS:
        raise TableInputError(f"The table has {frame.size:,} cells; the limit is {MAX_CELLS:,}.")
    names, seen = [], {}
    for index, column in enumerate(frame.columns, start=1):
        name = str(column).strip()
        if not name or name.lower().startswith("unnamed:") or name.lower() == "nan":
            name = f"column_{index}"  # a missing header
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"  # a duplicate header
        else:
            seen[name] = 1
        names.append(name)
    frame.columns = names
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        if frame[column].dtype == object or str(frame[column].dtype).startswith("str"):
            frame[column] = infer_column(frame[column])
    return frame


def infer_column(series: pd.Series) -> pd.Series:
    """Numbers stay numbers when (almost) every filled cell is one; mixed columns stay text."""
    filled = series.dropna()
    if filled.empty:
        return series
    as_text = filled.astype(str).str.strip().str.replace(",", "", regex=False)
    numbers = pd.to_numeric(as_text, errors="coerce")
    if numbers.notna().mean() == 1.0:
        converted = pd.to_numeric(series.astype(str).str.strip().str.replace(",", "", regex=False), errors="coerce")
        if (converted.dropna() % 1 == 0).all() and converted.isna().sum() == 0:
            return converted.astype("int64")
        return converted
    return series.astype("string")


def display_rows(frame: pd.DataFrame) -> list[list]:
    """Rows as plain lists with None for missing cells, for templates and JSON."""
    return frame.astype(object).where(frame.notna(), None).values.tolist()


def display_table(table_json: str, rows: int = 50) -> dict:
    """A result table (sandbox JSON) as columns, rows and a total, for pages and the API."""
    frame = table_from_json(table_json)
    return {"columns": [str(c) for c in frame.columns], "rows": display_rows(frame.head(rows)), "total": len(frame)}


def column_profile(frame: pd.DataFrame) -> list[dict]:
    return [
        {"name": str(c), "dtype": str(frame[c].dtype), "missing": int(frame[c].isna().sum())} for c in frame.columns
    ]


# ---- version files -------------------------------------------------------------


def storage_dir() -> Path:
    return settings.VAR_DIR / "tables"


def write_version_file(sheet: Sheet, number: int, frame: pd.DataFrame) -> Path:
    """The data file of a new version, written once and never changed."""
    folder = storage_dir() / str(sheet.workbook_id) / str(sheet.pk)
    folder.mkdir(parents=True, exist_ok=True)
    # A fresh name, created exclusively: ids restart with a new database (tests, restores)
    # and must never overwrite another workbook's data that happens to share them.
    path = folder / f"v{number}-{uuid.uuid4().hex[:12]}.json"
    with path.open("x", encoding="utf-8") as file:
        file.write(table_to_json(frame))
    return path


def load_version(version: SheetVersion) -> pd.DataFrame:
    path = Path(version.data_path)
    if not path.exists():
        raise TableInputError(f"The data of version {version.number} is missing on disk.")
    return table_from_json(path.read_text())


def diff_frames(old: pd.DataFrame, new: pd.DataFrame, limit: int = 500) -> dict:
    """What changed between two versions: columns, rows, and cells (by row position and column name)."""
    old_columns, new_columns = [str(c) for c in old.columns], [str(c) for c in new.columns]
    shared = [c for c in new_columns if c in old_columns]
    rows = min(len(old), len(new))
    changed = []
    for column in shared:
        before, after = old[column].iloc[:rows].reset_index(drop=True), new[column].iloc[:rows].reset_index(drop=True)
        differs = ~((before == after) | (before.isna() & after.isna())).fillna(False)
        for row in differs[differs].index[: limit - len(changed)]:
            changed.append(
                {"row": int(row), "column": column, "before": _plain(before[row]), "after": _plain(after[row])}
            )
        if len(changed) >= limit:
            break
    return {
        "added_columns": [c for c in new_columns if c not in old_columns],
        "removed_columns": [c for c in old_columns if c not in new_columns],
        "added_rows": max(0, len(new) - len(old)),
        "removed_rows": max(0, len(old) - len(new)),
        "changed_cells": changed,
        "truncated": len(changed) >= limit,
    }


def describe_change(old: pd.DataFrame, new: pd.DataFrame) -> str:
    """A version's name from what changed ("added column price; removed 2 rows"), not from
    the question that asked for it."""
    old_columns, new_columns = [str(c) for c in old.columns], [str(c) for c in new.columns]
    parts = []
    added = [c for c in new_columns if c not in old_columns]
    removed = [c for c in old_columns if c not in new_columns]
    if len(added) == len(removed) == 1 and len(old) == len(new) and old[removed[0]].equals(new[added[0]]):
        return f"renamed column {removed[0]} to {added[0]}"
    if added:
        parts.append(f"added column{'s' if len(added) > 1 else ''} {', '.join(added[:5])}")
    if removed:
        parts.append(f"removed column{'s' if len(removed) > 1 else ''} {', '.join(removed[:5])}")
    if len(new) > len(old):
        parts.append(f"added {len(new) - len(old)} row{'s' if len(new) - len(old) > 1 else ''}")
    elif len(new) < len(old):
        parts.append(f"removed {len(old) - len(new)} row{'s' if len(old) - len(new) > 1 else ''}")
    shared = [c for c in new_columns if c in old_columns]
    if not added and not removed and shared != old_columns:
        parts.append("reordered columns")
    if len(new) == len(old) and shared:
        before, after = old[shared].reset_index(drop=True), new[shared].reset_index(drop=True)
        same_rows = sorted(map(repr, before.astype(str).values.tolist())) == sorted(
            map(repr, after.astype(str).values.tolist())
        )
        if same_rows and not before.astype(str).equals(after.astype(str)):
            parts.append("sorted rows")
        else:
            changed = [c for c in shared if not before[c].astype(str).equals(after[c].astype(str))]
            if changed:
                masks = {c: before[c].astype(str) != after[c].astype(str) for c in changed}
                cells = sum(int(mask.sum()) for mask in masks.values())
                # Only empty cells got values: say "filled", the change a "fill missing" asks for.
                filled = all(before[c][mask].isna().all() for c, mask in masks.items())
                verb, what = ("filled", "missing cell") if filled else ("changed", "cell")
                parts.append(f"{verb} {cells} {what}{'s' if cells > 1 else ''} in {', '.join(changed[:5])}")
    return "; ".join(parts) or "no change"


def _plain(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


# ---- exports ------------------------------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value):
    """A spreadsheet must not run a formula that came from data (CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def export_csv(frame: pd.DataFrame) -> bytes:
    safe = frame.map(neutralize) if hasattr(frame, "map") else frame.applymap(neutralize)
    return safe.to_csv(index=False).encode("utf-8-sig")


def export_xlsx(frame: pd.DataFrame, sheet_name: str = "Sheet1") -> bytes:
    from openpyxl import Workbook as XlsxWorkbook

    book = XlsxWorkbook()
    sheet = book.active
    sheet.title = re.sub(r"[\[\]:*?/\\]", "_", sheet_name)[:31] or "Sheet1"
    sheet.append([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        sheet.append([_plain(v) for v in row])
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text, never a formula
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
