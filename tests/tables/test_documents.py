"""Tables from documents: real DOCX files written by python-docx and real PDFs drawn by
matplotlib (text kept as text), read back through the upload form and the API. Every bad
file is refused with a message that says why, and nothing is saved."""

import io
import zipfile

import pytest
from docx import Document

from apps.tables import documents
from apps.tables.models import Sheet, Workbook

pytestmark = pytest.mark.django_db


def rainfall_docx() -> bytes:
    document = Document()
    document.add_heading("Annual report", level=1)
    document.add_paragraph("Rainfall in 2025, in millimetres, measured at each city's main station.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "city", "rainfall"
    for city, mm in [("Oslo", "763"), ("Bergen", "2,250"), ("Tromsø", "1031")]:
        row = table.add_row().cells
        row[0].text, row[1].text = city, mm
    document.add_paragraph("Bergen stays the wettest city in the country.")
    document.add_paragraph("Staff by team.")
    second = document.add_table(rows=3, cols=3)
    for r, values in enumerate([["team", "people", "lead"], ["Data", "4", "Ana"], ["Web", "7", "Ben"]]):
        for c, value in enumerate(values):
            second.rows[r].cells[c].text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def table_pdf(
    pages: list[list[list[str]]], caption: str = "Table 1: Rainfall by city in 2025 (mm).", footer: bool = True
) -> bytes:
    """A PDF with one ruled table per page (matplotlib's table: cell borders are drawn lines,
    the text is real text in a TrueType font)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    out = io.BytesIO()
    with plt.rc_context({"pdf.fonttype": 42}), PdfPages(out) as pdf:
        for rows in pages:
            figure, axes = plt.subplots(figsize=(8.27, 11.69))
            axes.axis("off")
            if caption:
                figure.text(0.1, 0.7, caption)
            if rows:
                axes.table(cellText=rows[1:], colLabels=rows[0], loc="center")
            if footer:
                figure.text(0.1, 0.3, "Source: national weather service.")
            else:
                axes.add_patch(matplotlib.patches.Rectangle((0.2, 0.2), 0.5, 0.5))  # a drawing, no text
            pdf.savefig(figure)
            plt.close(figure)
    return out.getvalue()


RAIN = [["city", "rainfall"], ["Oslo", "763"], ["Bergen", "2250"], ["Tromsø", "1031"]]


def test_every_docx_table_with_the_paragraphs_around_it():
    tables = documents.read_docx("report.docx", rainfall_docx())
    assert [t.name for t in tables] == ["Table 1", "Table 2"]
    first, second = tables
    assert list(first.frame.columns) == ["city", "rainfall"]
    assert first.frame["city"].tolist() == ["Oslo", "Bergen", "Tromsø"]
    assert "Rainfall in 2025, in millimetres" in first.context
    assert "Bergen stays the wettest" in first.context  # the paragraph after it
    assert second.frame.shape == (2, 3)
    assert second.context.endswith("Staff by team.")  # its caption, last before it
    assert "Rainfall in 2025" not in second.context  # that belongs to the table before


def test_pdf_table_with_its_caption():
    [table] = documents.read_pdf("rain.pdf", table_pdf([RAIN]))
    assert list(table.frame.columns) == ["city", "rainfall"]
    assert table.frame["city"].tolist() == ["Oslo", "Bergen", "Tromsø"]
    assert "Rainfall by city in 2025" in table.context
    assert "Source: national weather service." in table.context
    assert "Oslo" not in table.context  # the table's own cells are not context


def test_pdf_table_continued_on_the_next_page_is_one_table():
    more = [["city", "rainfall"], ["Stavanger", "1180"], ["Bodø", "1020"]]
    [table] = documents.read_pdf("rain.pdf", table_pdf([RAIN, more], caption=""))
    assert table.frame["city"].tolist() == ["Oslo", "Bergen", "Tromsø", "Stavanger", "Bodø"]


def test_upload_form_reads_a_docx_into_document_sheets(client, researcher):
    client.force_login(researcher)
    upload = io.BytesIO(rainfall_docx())
    upload.name = "report.docx"
    response = client.post("/tables/", {"file": upload})
    workbook = Workbook.objects.get(owner=researcher)
    assert response.status_code == 302
    assert response.url.endswith(f"/tables/{workbook.pk}/")
    assert workbook.kind == "document"  # answered in words by default, with the context
    sheets = list(workbook.sheets.order_by("position"))
    assert [s.name for s in sheets] == ["Table 1", "Table 2"]
    assert "Rainfall in 2025" in sheets[0].context
    from apps.tables import workbooks

    frame = workbooks.load_version(sheets[0].current_version)
    assert frame["rainfall"].tolist() == [763, 2250, 1031]  # "2,250" read as a number


def test_api_reads_a_pdf(client, researcher):
    from apps.accounts.services import create_api_token

    _token, raw = create_api_token(researcher, "test")
    response = client.post(
        "/api/tables/workbooks",
        {"file": _named(table_pdf([RAIN]), "rain.pdf")},
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    workbook = Workbook.objects.get(pk=body["id"])
    assert workbook.kind == "document"
    assert "Rainfall by city" in workbook.sheets.get().context


def _named(data: bytes, name: str) -> io.BytesIO:
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def _corrupt_docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types>not closed")
        archive.writestr("word/document.xml", "<w:document")
    return out.getvalue()


def _docx_without_tables() -> bytes:
    document = Document()
    document.add_paragraph("Only words here.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _docx_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<" + b" " * (3 * 1024 * 1024))
    return out.getvalue()


def _encrypted_pdf() -> bytes:
    # pdfminer refuses a PDF whose Encrypt dictionary needs a password it does not have:
    # a minimal file with a standard-security-handler Encrypt entry and a non-empty user key.
    body = (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"3 0 obj << /Filter /Standard /V 2 /R 3 /Length 128 /P -4 "
        b"/O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> >> endobj\n"
    )
    xref_at = len(body)
    return body + (
        b"xref\n0 4\n0000000000 65535 f \n"
        + b"".join(f"{body.index(f'{n} 0 obj'.encode()):010d} 00000 n \n".encode() for n in (1, 2, 3))
        + b"trailer << /Size 4 /Root 1 0 R /Encrypt 3 0 R /ID [<"
        + b"33" * 16
        + b"> <"
        + b"33" * 16
        + b">] >>\nstartxref\n"
        + str(xref_at).encode()
        + b"\n%%EOF\n"
    )


@pytest.mark.parametrize(
    ("name", "make", "words"),
    [
        ("broken.docx", _corrupt_docx, "not a readable DOCX"),
        ("notzip.docx", lambda: b"PK\x03\x04 not really a zip", "not a readable DOCX"),
        ("words.docx", _docx_without_tables, "has no tables"),
        ("locked.docx", lambda: documents.OLE_MAGIC + b"\x00" * 512, "encrypted or in the old binary Word format"),
        ("broken.pdf", lambda: b"%PDF-1.4\n garbage that is not a PDF", "not a readable PDF"),
        ("fake.pdf", lambda: b"hello, I am text", "not a PDF file"),
        ("notables.pdf", lambda: table_pdf([[]]), "no tables"),
        ("locked.pdf", _encrypted_pdf, "encrypted"),
        ("scan.pdf", lambda: table_pdf([[]], caption="", footer=False), "no text layer"),
        ("empty.docx", lambda: b"", "is empty"),
    ],
)
def test_bad_documents_are_refused_and_nothing_is_saved(client, researcher, name, make, words):
    client.force_login(researcher)
    response = client.post("/tables/", {"file": _named(make(), name)}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert any(words in m for m in shown), shown
    assert not Workbook.objects.exists()
    assert not Sheet.objects.exists()


def test_docx_past_the_unpacking_limit_is_refused(client, researcher, settings):
    settings.TABLES_MAX_UNPACKED_BYTES = 1024 * 1024
    client.force_login(researcher)
    response = client.post("/tables/", {"file": _named(_docx_bomb(), "bomb.docx")}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert any("unpacks to" in m for m in shown), shown
    assert not Workbook.objects.exists()


def test_pdf_with_too_many_pages_is_refused(monkeypatch):
    monkeypatch.setattr(documents, "MAX_PDF_PAGES", 1)
    with pytest.raises(documents.DocumentError, match="has 2 pages; at most 1"):
        documents.read_pdf("long.pdf", table_pdf([RAIN, RAIN]))


def test_document_tables_past_the_cell_limit_are_refused(settings):
    settings.TABLES_MAX_CELLS = 5
    with pytest.raises(documents.DocumentError, match="table cells; the limit is 5"):
        documents.read_docx("report.docx", rainfall_docx())
