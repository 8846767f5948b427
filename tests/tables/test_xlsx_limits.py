"""XLSX uploads are limited by what they expand to, not only by their size, and are read as
values only (no external links, no macros). The files are generated here."""

import io
import re
import struct
import time
import zipfile

import pytest
from openpyxl import Workbook as XlsxWorkbook

from apps.tables import workbooks
from apps.tables.xlsx import declared_cells

pytestmark = pytest.mark.django_db


def plain_xlsx(rows: list[list]) -> bytes:
    book = XlsxWorkbook()
    sheet = book.active
    sheet.title = "Data"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rewrite(data: bytes, change: dict[str, callable], add: dict[str, bytes] | None = None) -> bytes:
    """A copy of the zip with some members' bytes changed and others added."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            body = source.read(member)
            if member.filename in change:
                body = change[member.filename](body)
            target.writestr(member.filename, body)
        for name, body in (add or {}).items():
            target.writestr(name, body)
    return out.getvalue()


SHEET = "xl/worksheets/sheet1.xml"


def test_a_zip_bomb_is_refused_from_its_directory_before_parsing(settings):
    settings.TABLES_MAX_UNPACKED_BYTES = 5 * 1024 * 1024
    padding = b" " * (40 * 1024 * 1024)  # 40 MB of whitespace inside the sheet: compresses ~1000:1
    bomb = rewrite(
        plain_xlsx([["a", "b"], [1, 2]]), {SHEET: lambda xml: xml.replace(b"</worksheet>", padding + b"</worksheet>")}
    )
    assert len(bomb) < 200_000
    started = time.perf_counter()
    with pytest.raises(workbooks.TableInputError, match=r"bomb\.xlsx unpacks to 40\.\d MB, more than the 5\.0 MB"):
        workbooks.read_upload("bomb.xlsx", bomb)
    assert time.perf_counter() - started < 1.0  # the directory alone decided


def test_a_lying_directory_gains_nothing(settings):
    """The directory says the sheet is small; zipfile stops at the declared size and the file
    fails as corrupt instead of being unpacked in full."""
    settings.TABLES_MAX_UNPACKED_BYTES = 5 * 1024 * 1024
    padding = b" " * (40 * 1024 * 1024)
    bomb = rewrite(
        plain_xlsx([["a", "b"], [1, 2]]), {SHEET: lambda xml: xml.replace(b"</worksheet>", padding + b"</worksheet>")}
    )
    name = SHEET.encode()
    patched = bytearray(bomb)
    for signature, size_offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        for match in re.finditer(re.escape(signature), bomb):
            start = match.start()
            if bytes(patched[start + name_offset : start + name_offset + len(name)]) == name:
                patched[start + size_offset : start + size_offset + 4] = struct.pack("<I", 2000)
    started = time.perf_counter()
    with pytest.raises(workbooks.TableInputError, match="not a readable XLSX file"):
        workbooks.read_upload("liar.xlsx", bytes(patched))
    assert time.perf_counter() - started < 2.0


def test_declared_dimensions_past_the_cell_limit_are_refused_before_parsing(settings):
    settings.TABLES_MAX_CELLS = 10_000
    claims = rewrite(
        plain_xlsx([["a", "b"], [1, 2]]),
        {SHEET: lambda xml: re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:ZZ100000"', xml)},
    )
    with pytest.raises(workbooks.TableInputError, match=r"declares 70,200,000 cells; the limit is 10,000"):
        workbooks.read_upload("claims.xlsx", claims)


def test_cells_are_counted_while_streaming_when_no_dimension_is_declared(settings):
    settings.TABLES_MAX_CELLS = 1_000
    rows = [["n", "square", "cube"]] + [[i, i * i, i**3] for i in range(600)]  # 1,803 cells
    hidden = rewrite(plain_xlsx(rows), {SHEET: lambda xml: re.sub(rb"<dimension [^>]*/>", b"", xml)})
    assert declared_cells(zipfile.ZipFile(io.BytesIO(hidden)).read(SHEET)[:4096]) == 0
    with pytest.raises(workbooks.TableInputError, match=r"has more than 1,00\d cells; the limit is 1,000"):
        workbooks.read_upload("many.xlsx", hidden)
    settings.TABLES_MAX_CELLS = 2_000
    [(name, frame)] = workbooks.read_upload("many.xlsx", hidden)
    assert (name, frame.shape, int(frame["cube"].iloc[-1])) == ("Data", (600, 3), 599**3)


EXTERNAL_LINK = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"
 xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<externalBook r:id="rId1"><sheetNames><sheetName val="Secrets"/></sheetNames>
<sheetDataSet><sheetData sheetId="0"><row r="1"><cell r="A1"><v>999</v></cell></row></sheetData></sheetDataSet>
</externalBook></externalLink>"""
EXTERNAL_LINK_RELS = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/externalLinkPath"
 Target="http://attacker.example/secrets.xlsx" TargetMode="External"/></Relationships>"""


def linked_workbook_with_macros() -> bytes:
    """A workbook whose B2 is a formula over another (remote) workbook, with its cached value
    42, plus an external link part and a VBA project, wired into the workbook's relations."""
    base = plain_xlsx([["item", "amount"], ["linked", "=[1]Secrets!A1*0+42"], ["typed", 7]])

    def cache_value(xml: bytes) -> bytes:
        return re.sub(rb"(<c r=\"B2\"[^>]*>\s*<f>[^<]*</f>)\s*(<v\s*/>|<v></v>)?", rb"\1<v>42</v>", xml)

    def link_workbook(xml: bytes) -> bytes:
        return xml.replace(
            b"</sheets>",
            b"</sheets><externalReferences><externalReference "
            b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" r:id="rIdLink"/>'
            b"</externalReferences>",
        )

    def link_rels(xml: bytes) -> bytes:
        rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
        extra = (
            f'<Relationship Id="rIdLink" Type="{rel}/externalLink" Target="externalLinks/externalLink1.xml"/>'
            '<Relationship Id="rIdVba" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" '
            'Target="vbaProject.bin"/>'
        )
        return xml.replace(b"</Relationships>", extra.encode() + b"</Relationships>")

    def content_types(xml: bytes) -> bytes:
        extra = (
            b'<Override PartName="/xl/externalLinks/externalLink1.xml" ContentType="application/'
            b'vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/>'
            b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
        )
        return xml.replace(b"</Types>", extra + b"</Types>")

    return rewrite(
        base,
        {
            SHEET: cache_value,
            "xl/workbook.xml": link_workbook,
            "xl/_rels/workbook.xml.rels": link_rels,
            "[Content_Types].xml": content_types,
        },
        add={
            "xl/externalLinks/externalLink1.xml": EXTERNAL_LINK,
            "xl/externalLinks/_rels/externalLink1.xml.rels": EXTERNAL_LINK_RELS,
            "xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + b'Attribute VB_Name = "Evil"\nSub AutoOpen()\nEnd Sub' * 20,
        },
    )


def test_external_links_and_macros_are_read_as_values_only(client_for, researcher):
    data = linked_workbook_with_macros()
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert b"<v>42</v>" in archive.read(SHEET)  # the generated file really has a cached formula
    assert "xl/externalLinks/externalLink1.xml" in archive.namelist()
    [(name, frame)] = workbooks.read_upload("linked.xlsx", data)
    assert name == "Data"
    assert frame["amount"].tolist() == [42, 7]  # the cached value, not the formula text
    assert not frame.astype(str).apply(lambda column: column.str.contains("Secrets|=", regex=True)).any().any()
    # Through the upload page, the stored version holds values only too.
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.tables.models import Sheet

    client_for(researcher).post("/tables/", {"file": SimpleUploadedFile("linked.xlsx", data)}, follow=True)
    stored = workbooks.load_version(Sheet.objects.get(workbook__owner=researcher).current_version)
    assert stored["amount"].tolist() == [42, 7]


def test_an_ordinary_workbook_still_reads_with_types():
    data = plain_xlsx([["region", "units", "price"], ["north", 3, 2.5], ["south", None, 4.0], [None, None, None]])
    [(name, frame)] = workbooks.read_upload("ok.xlsx", data)
    assert name == "Data"
    assert list(frame.columns) == ["region", "units", "price"]
    assert frame.shape == (2, 3)
    assert frame["price"].tolist() == [2.5, 4.0]
