"""An analyst in a real browser: upload an XLSX, ask a question and watch the answer
arrive, change the sheet with code run in the sandbox, undo it, and draw a chart."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.tables.models import Sheet
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db(transaction=True)]

XLSX = Path(__file__).resolve().parents[1] / "tables" / "data" / "book.xlsx"


def ask(page, question: str):
    """Ask, and return the new assistant turn (not the previous last one)."""
    turns = page.locator(".turn.assistant")
    before = turns.count()
    page.fill("#ask-form textarea", question)
    page.click("#ask-form button[type=submit]")
    expect(turns).to_have_count(before + 1)
    return turns.nth(before)


def test_upload_ask_change_undo_chart(page, log_in, live_stack, screenshot):
    log_in(UserFactory(username="e2e-analyst", role="researcher"))
    page.goto(f"{live_stack.url}/tables/")
    page.set_input_files("#id_file", str(XLSX))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("nav.tabs a")).to_have_count(2)  # Sales and Regions; the empty sheet is skipped
    expect(page.locator("table.data tbody tr")).to_have_count(5)

    answer = ask(page, "What is the total revenue?")
    expect(answer.locator("[data-job-status]")).to_have_attribute("data-job-status", "succeeded", timeout=120_000)
    expect(answer.locator(".code").first).to_be_visible()  # the chosen code; the other candidates fold below

    change = ask(page, "Add a column with revenue per unit")
    expect(change.locator("[data-job-status]")).to_have_attribute("data-job-status", "succeeded", timeout=120_000)
    page.wait_for_timeout(2500)  # let a last in-flight status poll land before touching the message
    change.locator("details.edit-code summary").click()
    change.locator("textarea[name=code]").fill("df['per_unit'] = df['revenue'] / df['units']")
    change.locator("button[type=submit]").click()
    edited = page.locator(".turn.assistant").nth(2)
    # The model's own answer may have saved a version already; the edited run saves the next.
    expect(edited.locator(".result-version")).to_contain_text("added column per_unit", timeout=60_000)
    screenshot("tables-chat")
    latest = str(Sheet.objects.get(workbook__owner__username="e2e-analyst", name="Sales").current_version.number)

    page.reload()
    expect(page.locator("#versions tr.current")).to_have_attribute("data-version", latest)
    expect(page.locator("table.data thead")).to_contain_text("per_unit")
    page.click("#undo-button")
    expect(page.locator("#versions tr.current")).to_have_attribute("data-version", str(int(latest) - 1))
    headers = [text.splitlines()[0].strip() for text in page.locator("table.data thead th").all_inner_texts()]
    assert "per_unit" not in headers  # (the model's own column, if it made one, may stay)

    chart = ask(page, "Plot revenue by month as a line chart")
    expect(chart.locator("img.chart")).to_be_visible(timeout=120_000)
    screenshot("tables-chart")


def test_merge_two_sheets_and_download(page, log_in, live_stack):
    import pandas as pd

    from apps.tables import services

    user = UserFactory(username="e2e-merger", role="researcher")
    data = XLSX.parent
    workbook = services.create_workbook(
        user, "Sales", [("Sales", pd.read_csv(data / "sales.csv"))], source_name="sales.csv"
    )
    services.create_workbook(
        user, "Regions", [("Regions", pd.read_csv(data / "regions.csv"))], source_name="regions.csv"
    )
    log_in(user)
    page.goto(f"{live_stack.url}/tables/{workbook.pk}/")
    page.click("text=Propose a key")
    expect(page.locator("#merge-form input[name=key]:checked")).to_have_value("region")
    page.click("#merge-form button[type=submit]")
    expect(page.locator("#versions tr.current")).to_have_attribute("data-version", "2")
    expect(page.locator("table.data thead")).to_contain_text("manager")
    with page.expect_download() as download_info:
        page.locator("#versions tr.current a", has_text="CSV").click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    assert content.splitlines()[0] == "month,region,units,revenue,manager"
