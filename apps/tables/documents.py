"""Tables inside documents: every table of a DOCX (python-docx) and the ruled tables of a
text-based PDF (pdfplumber), each with the text around it, which text mode shows the model
with the table (TableLLM's document format: a table is often only clear with its caption).

Every refusal is a DocumentError whose message is for the user: a corrupt file, an encrypted
one, a scan without a text layer, a document with no tables, or one past the limits. Nothing
is read past a limit: a DOCX is a zip and goes through the same unpacking limits as an XLSX
before python-docx parses it; a PDF is refused by page count before its pages are read."""

import io
from dataclasses import dataclass

import pandas as pd
from django.conf import settings

from apps.tables.xlsx import WorkbookLimitError, check_archive

MAX_TABLES = 50  # sheets made from one document
MAX_PDF_PAGES = 200
CONTEXT_CHARS = 1500  # of text kept around each table
CONTEXT_LINES_BEFORE, CONTEXT_LINES_AFTER = 4, 2  # of a PDF page's lines around a table
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a password-protected Office file is an OLE container


class DocumentError(ValueError):
    """A document that gives no tables; the message is for the user."""


@dataclass
class DocumentTable:
    name: str
    frame: pd.DataFrame
    context: str  # the paragraphs before and after the table


def _frame(rows: list[list[str]], header: list | None = None) -> pd.DataFrame | None:
    """The first non-empty row is the header (unless one is given); a table needs a header and
    at least one data row."""
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < (1 if header is not None else 2):
        return None
    width = max(len(row) for row in rows)
    rows = [[cell.strip() for cell in row] + [""] * (width - len(row)) for row in rows]
    if header is None:
        header, rows = rows[0], rows[1:]
    return pd.DataFrame(rows, columns=header).replace("", pd.NA)


def _check_cells(file_name: str, tables: list[DocumentTable]) -> None:
    cells = sum(table.frame.size for table in tables)
    if cells > settings.TABLES_MAX_CELLS:
        raise DocumentError(
            f"{file_name} has {cells:,} table cells; the limit is {settings.TABLES_MAX_CELLS:,} (TABLES_MAX_CELLS)."
        )


def _join_context(before: list[str], after: list[str]) -> str:
    text = "\n".join(before + after).strip()
    return text[:CONTEXT_CHARS]


# ---- DOCX ------------------------------------------------------------------------------------


def read_docx(file_name: str, data: bytes) -> list[DocumentTable]:
    """Every table of the document body in order, with the nearest paragraph before it (and a
    heading above that, when there is one) and the paragraph after it as context."""
    if data.startswith(OLE_MAGIC):
        raise DocumentError(
            f"{file_name} is encrypted or in the old binary Word format (.doc). Remove the password, "
            "or save it as .docx, and upload it again."
        )
    try:
        check_archive(file_name, data, sheet_prefix="word/", label="DOCX")
    except WorkbookLimitError as exc:
        raise DocumentError(str(exc)) from None
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except Exception as exc:  # noqa: BLE001  (python-docx and lxml raise many types for a corrupt file)
        raise DocumentError(f"{file_name} is not a readable DOCX file ({type(exc).__name__}).") from None
    texts = [block.text.strip() if isinstance(block, Paragraph) else None for block in blocks]
    tables: list[DocumentTable] = []
    for index, block in enumerate(blocks):
        if not isinstance(block, Table):
            continue
        try:
            rows = [[cell.text for cell in row.cells] for row in block.rows]
        except Exception as exc:  # noqa: BLE001  (a malformed grid: python-docx raises IndexError and others)
            number = len(tables) + 1
            raise DocumentError(f"{file_name}: table {number} could not be read ({type(exc).__name__}).") from None
        frame = _frame(rows)
        if frame is None:
            continue
        tables.append(DocumentTable(f"Table {len(tables) + 1}", frame, _docx_context(texts, index)))
        if len(tables) > MAX_TABLES:
            raise DocumentError(f"{file_name} has more than {MAX_TABLES} tables; split the document.")
        _check_cells(file_name, tables)
    if not tables:
        raise DocumentError(f"{file_name} has no tables (a table needs a header row and at least one data row).")
    return tables


def _docx_context(texts: list[str | None], index: int) -> str:
    """Paragraphs next to block `index`: the nearest non-empty one before (and one more before
    that when the nearest is short, like a caption under a heading) and the nearest one after;
    another table in between ends the search."""
    before: list[str] = []
    for text in reversed(texts[:index]):
        if text is None or len(before) == 2:
            break
        if text:
            before.insert(0, text)
            if len(text) > 80:
                break
    after: list[str] = []
    for text in texts[index + 1 :]:
        if text is None:
            break
        if text:
            after.append(text)
            break
    return _join_context(before, after)


# ---- PDF -------------------------------------------------------------------------------------


def read_pdf(file_name: str, data: bytes) -> list[DocumentTable]:
    """The ruled tables of a text-based PDF, page by page, with the lines of text just above
    and below each as context. A table that goes on over a page break with the same header is one table."""
    if not data.lstrip()[:5] == b"%PDF-":
        raise DocumentError(f"{file_name} is not a PDF file.")
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001  (pdfminer raises many types for a corrupt file)
        # pdfplumber wraps pdfminer's error as the first argument of its own.
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
        if isinstance(cause, PDFPasswordIncorrect | PDFEncryptionError):
            raise DocumentError(f"{file_name} is encrypted. Remove the password and upload it again.") from None
        raise DocumentError(f"{file_name} is not a readable PDF file ({type(cause).__name__}).") from None
    with pdf:
        try:
            pages = pdf.pages
        except Exception as exc:  # noqa: BLE001
            raise DocumentError(f"{file_name} is not a readable PDF file ({type(exc).__name__}).") from None
        if len(pages) > MAX_PDF_PAGES:
            raise DocumentError(f"{file_name} has {len(pages)} pages; at most {MAX_PDF_PAGES} are read.")
        tables: list[DocumentTable] = []
        any_text = False
        try:
            for page in pages:
                any_text = any_text or bool(page.chars)
                found_tables = page.find_tables()
                lines = _text_outside(page, [found.bbox for found in found_tables]) if found_tables else []
                for found in found_tables:
                    rows = [[cell or "" for cell in row] for row in found.extract()]
                    _add_pdf_table(tables, rows, _pdf_context(lines, found.bbox))
                    if len(tables) > MAX_TABLES:
                        raise DocumentError(f"{file_name} has more than {MAX_TABLES} tables; split the document.")
                    _check_cells(file_name, tables)
                page.close()  # frees the page's parsed objects: long documents stay small
        except DocumentError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DocumentError(f"{file_name} is not a readable PDF file ({type(exc).__name__}).") from None
    if not tables:
        if not any_text:
            raise DocumentError(
                f"{file_name} has no text layer (a scanned PDF?): only text-based PDFs can be read. "
                "Export the table from the original document instead."
            )
        raise DocumentError(f"{file_name} has no tables with ruled cells that could be read.")
    return tables


def _text_outside(page, boxes: list[tuple]) -> list[dict]:
    """The page's lines of text (top to bottom) that are not inside one of the tables."""

    def inside(line: dict) -> bool:
        return any(
            x0 - 1 <= line["x0"] and line["x1"] <= x1 + 1 and top - 1 <= line["top"] and line["bottom"] <= bottom + 1
            for x0, top, x1, bottom in boxes
        )

    return [line for line in page.extract_text_lines() if not inside(line)]


def _add_pdf_table(tables: list[DocumentTable], rows: list[list[str]], context: str) -> None:
    frame = _frame(rows)
    if frame is None:
        return
    previous = tables[-1] if tables else None
    if previous is not None and list(previous.frame.columns) == list(frame.columns):
        # The header repeated on the next page: the same table goes on.
        previous.frame = pd.concat([previous.frame, frame], ignore_index=True)
        return
    if previous is not None and len(frame.columns) == len(previous.frame.columns) and starts_with_data(rows):
        # No header on this page, and the first row is data: the table began on an earlier page.
        continued = _frame(rows, list(previous.frame.columns))
        previous.frame = pd.concat([previous.frame, continued], ignore_index=True)
        return
    tables.append(DocumentTable(f"Table {len(tables) + 1}", frame, context))


def starts_with_data(rows: list[list[str]]) -> bool:
    """Whether the first row is mostly numbers: data, not a header."""
    first = [cell.strip().replace(",", "") for cell in rows[0] if cell and cell.strip()]
    numeric = 0
    for cell in first:
        try:
            float(cell)
        except ValueError:
            continue
        numeric += 1
    return bool(first) and numeric * 2 >= len(first)


def _pdf_context(lines: list[dict], bbox: tuple[float, float, float, float]) -> str:
    """The lines of text just above the table on its page (a caption, a paragraph's end) and
    just below it, outside any table."""
    _x0, top, _x1, bottom = bbox
    above = [line["text"] for line in lines if line["bottom"] <= top + 1]
    below = [line["text"] for line in lines if line["top"] >= bottom - 1]
    return _join_context(above[-CONTEXT_LINES_BEFORE:], below[:CONTEXT_LINES_AFTER])
