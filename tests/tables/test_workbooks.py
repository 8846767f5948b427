"""Reading tables, versions, undo/redo, diffs, exports and the pages around them."""

import io
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from apps.tables import assistant, services, workbooks
from apps.tables.models import Sheet, Workbook

DATA = Path(__file__).parent / "data"


def upload(client, name: str, data: bytes, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post("/tables/", {"file": SimpleUploadedFile(name, data), **extra}, follow=True)


def test_csv_upload_infers_types(client_for, researcher):
    response = upload(client_for(researcher), "sales.csv", (DATA / "sales.csv").read_bytes())
    assert response.status_code == 200
    sheet = Sheet.objects.get(workbook__owner=researcher)
    dtypes = {c["name"]: c["dtype"] for c in sheet.current_version.columns}
    assert dtypes["units"] == "int64"
    assert dtypes["revenue"] == "int64"
    assert "string" in dtypes["region"] or "str" in dtypes["region"]
    page = response.content.decode()
    assert "2026-04" in page
    assert "5 rows" in page


def test_xlsx_upload_keeps_every_non_empty_sheet(client_for, teacher):
    upload(client_for(teacher), "book.xlsx", (DATA / "book.xlsx").read_bytes())
    workbook = Workbook.objects.get(owner=teacher)
    assert [s.name for s in workbook.sheets.all()] == ["Sales", "Regions"]


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("notes.odt", b"PK\x03\x04", "unsupported file type"),
        ("broken.xlsx", b"PK\x03\x04 not really a zip", "not a readable XLSX"),
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"a,b\n,\n,\n", "The table is empty"),
    ],
)
def test_bad_files_get_a_clear_error(client_for, researcher, name, data, error):
    response = upload(client_for(researcher), name, data)
    assert error in response.content.decode()
    assert not Workbook.objects.filter(owner=researcher).exists()


def test_huge_upload_is_refused_before_reading(client_for, researcher, settings):
    settings.TABLES_MAX_UPLOAD_BYTES = 1000
    response = upload(client_for(researcher), "big.csv", b"a,b\n" + b"1,2\n" * 2000)
    assert "the limit is" in response.content.decode()


def test_non_utf8_csv_is_decoded():
    sheets = workbooks.read_upload("latin1.csv", (DATA / "latin1.csv").read_bytes())
    assert "Málaga" in sheets[0][1]["city"].tolist() or "Köln" in sheets[0][1]["city"].tolist()


def test_duplicate_and_missing_headers_are_named():
    frame = workbooks.clean_frame(pd.DataFrame([[1, 2, 3]], columns=["a", "a", "Unnamed: 2"]))
    assert list(frame.columns) == ["a", "a_2", "column_3"]


def test_mixed_types_stay_text():
    frame = workbooks.clean_frame(pd.DataFrame({"x": ["1", "two", "3"]}))
    assert str(frame["x"].dtype) == "string"


@pytest.mark.parametrize(
    "pasted",
    [
        "| name | score |\n|---|---|\n| Ann | 3 |\n| Bo | 5 |",
        "<table><tr><th>name</th><th>score</th></tr><tr><td>Ann</td><td>3</td></tr><tr><td>Bo</td><td>5</td></tr></table>",
        "name\tscore\nAnn\t3\nBo\t5",
    ],
    ids=["markdown", "html", "tab-separated"],
)
def test_pasted_tables(pasted):
    frame = workbooks.parse_pasted(pasted)
    assert list(frame.columns) == ["name", "score"]
    assert frame["score"].tolist() == [3, 5]


def make_sheet(owner, frame=None) -> Sheet:
    frame = frame if frame is not None else pd.read_csv(DATA / "sales.csv")
    workbook = services.create_workbook(owner, "Sales", [("Sales", frame)], source_name="sales.csv")
    return workbook.sheets.get()


def test_versions_undo_redo_and_diff(researcher):
    sheet = make_sheet(researcher)
    first = sheet.current_version
    frame = workbooks.load_version(first)
    frame.loc[1, "revenue"] = 1600
    frame["note"] = "x"
    second = services.save_version(sheet, frame, "edit")
    assert second.parent == first
    diff = workbooks.diff_frames(workbooks.load_version(first), workbooks.load_version(second))
    assert diff["added_columns"] == ["note"]
    assert diff["changed_cells"] == [{"row": 1, "column": "revenue", "before": 1500, "after": 1600}]
    assert services.undo(sheet) == first
    assert Sheet.objects.get(pk=sheet.pk).current_version == first
    assert services.undo(sheet) is None  # nothing before the upload
    assert services.redo(sheet) == second
    assert workbooks.load_version(first)["revenue"].tolist()[1] == 1500  # never changed in place


def test_csv_export_neutralizes_formulas():
    frame = pd.DataFrame({"cell": ['=HYPERLINK("http://evil")', "+1", "-2", "@SUM(A1)", "safe"]})
    text = workbooks.export_csv(frame).decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    assert "'+1" in text
    assert "'@SUM" in text
    assert "\nsafe" in text


def test_xlsx_export_writes_formulas_as_text():
    frame = pd.DataFrame({"cell": ["=1+1", "plain"], "n": [1, 2]})
    book = load_workbook(io.BytesIO(workbooks.export_xlsx(frame)))
    cell = book.active["A2"]
    assert cell.value == "=1+1"
    assert cell.data_type == "s"


def test_download_and_ownership(client_for, researcher, student):
    sheet = make_sheet(researcher)
    response = client_for(researcher).get(f"/tables/versions/{sheet.current_version.pk}/download.csv")
    assert response.status_code == 200
    assert b"2026-01" in response.content
    assert client_for(student).get(f"/tables/versions/{sheet.current_version.pk}/download.csv").status_code == 404
    assert client_for(student).get(f"/tables/{sheet.workbook_id}/").status_code == 404


def test_mode_decision():
    spreadsheet = Workbook(kind="spreadsheet")
    document = Workbook(kind="document")
    assert assistant.decide_mode(spreadsheet, "Plot revenue by month") == "chart"
    assert assistant.decide_mode(spreadsheet, "Add a column with revenue per unit") == "code"
    assert assistant.decide_mode(spreadsheet, "What is the total revenue?") == "both"
    assert assistant.decide_mode(document, "Who scored highest?") == "text"


def test_prompts_follow_tablellm_formats():
    frame = pd.read_csv(DATA / "sales.csv")
    text = assistant.text_prompt(frame, "Total?", "Quarterly sales.")[-1]["content"]
    assert "[Table]\n| month | region | units | revenue |" in text
    assert "[Context]\nQuarterly sales." in text
    code = assistant.code_prompt(frame, "Total?")[-1]["content"]
    assert '- "month": text holding dates' in code  # the schema, one quoted name a line
    assert '- "region": text, values "North", "South"' in code  # few distinct values are listed
    assert "First 3 rows as CSV:\n```csv\nmonth,region,units,revenue\n" in code
    assert "`df` is already loaded" in code
    assert code.endswith("Total?")  # the question comes last, after the data


def test_code_extraction_and_agreement():
    assert assistant.extract_code("Sure:\n```python\nresult = df['x'].sum()\n```\nDone") == "result = df['x'].sum()"
    assert assistant.extract_code("```Python\nresult = 1") == "result = 1"  # cut off at max_tokens
    assert assistant.answers_agree({"type": "value", "value": 6550}, "The total revenue is 6,550.") is True
    assert assistant.answers_agree({"type": "value", "value": 6550}, "It is 12.") is False
    assert assistant.answers_agree({"type": "table", "table": "{}"}, "x") is None


def test_merge_key_proposal_and_merge(researcher):
    sales = make_sheet(researcher)
    regions = make_sheet(researcher, pd.read_csv(DATA / "regions.csv"))
    left, right = workbooks.load_version(sales.current_version), workbooks.load_version(regions.current_version)
    assert assistant.propose_merge_keys(left, right)[0]["key"] == "region"
    version = assistant.merge_sheets(sales, regions, "region")
    merged = workbooks.load_version(version)
    assert "manager" in merged.columns
    assert merged.loc[merged["region"] == "South", "manager"].iloc[0] == "Bo"


def test_chart_is_drawn_as_svg_and_png():
    frame = pd.read_csv(DATA / "sales.csv")
    for kind in assistant.CHART_KINDS:
        svg = assistant.draw_chart(frame, {"kind": kind, "x": "month", "y": "revenue"})
        assert svg.startswith("<?xml")
    assert assistant.draw_chart(frame, {"kind": "bar", "x": "month", "y": "revenue"}, "png")[:4] == b"\x89PNG"


def test_students_see_tables_but_not_others_workbooks(client_for, student, researcher):
    make_sheet(researcher)
    page = client_for(student).get("/tables/").content.decode()
    assert "Your workbooks" in page
    assert "sales.csv" not in page


def test_junk_ids_are_404_not_500(client_for, researcher):
    sheet = make_sheet(researcher)
    client = client_for(researcher)
    assert client.get(f"/tables/{sheet.workbook_id}/?sheet=abc&version=x").status_code == 200
    assert client.get(f"/tables/sheets/{sheet.pk}/diff/?a=zz").status_code == 404
    assert client.get(f"/tables/sheets/{sheet.pk}/merge/?other=zz").status_code == 404
    assert client.post(f"/tables/{sheet.workbook_id}/ask/", {"sheet": "x", "question": "hi"}).status_code == 404
