"""An analyst in a real browser against the real assistant model: the streamed answer shows
each token once (read in the page and compared with the stored answer), a chart of total
revenue by region draws one summed bar per region with the aggregated table under it,
a change is named after what changed and undone, a broken run says it failed and why,
and no Tables page is wider than a 390 px phone."""

from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect

from apps.inference.models import Generation
from apps.tables import services, workbooks
from apps.tables.models import Sheet, TableMessage
from tests.factories import UserFactory

# Whether an element's text lies on one line: no text box starts a font size or more below another.
ONE_LINE = """c => {
  const range = document.createRange();
  range.selectNodeContents(c);
  const tops = [...range.getClientRects()].map((r) => r.top);
  return Math.max(...tops) - Math.min(...tops) < parseFloat(getComputedStyle(c).fontSize);
}"""

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db(transaction=True)]

DATA = Path(__file__).resolve().parents[1] / "tables" / "data"
ANSWER_MS = 600_000  # the model server is shared on 2 cores: generous, the test checks outcomes
# Keeps the newest text of every streamed answer, so the test can read what the page showed
# even after the finished turn replaces the stream box.
RECORD_STREAMS = """
window.__streams = {};
new MutationObserver(() => {
  document.querySelectorAll("pre.stream").forEach((pre) => { window.__streams[pre.id] = pre.textContent; });
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def ask(page, question: str, mode: str = "auto"):
    turns = page.locator(".turn.assistant")
    before = turns.count()
    page.fill("#ask-form textarea", question)
    page.select_option("#ask-mode", mode)
    page.click("#ask-form button[type=submit]")
    expect(turns).to_have_count(before + 1)
    return turns.nth(before)


def no_horizontal_overflow(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{page.url} is {width} px wide in a {viewport} px window"


def test_stream_chart_change_undo_failure_and_phone_width(page, log_in, live_stack, screenshot):
    user = UserFactory(username="e2e-trust", role="researcher")
    sales = workbooks.clean_frame(pd.read_csv(DATA / "sales.csv", dtype=str))
    workbook = services.create_workbook(user, "Sales", [("Sales", sales)], source_name="sales.csv")
    services.create_workbook(
        user, "Regions", [("Regions", pd.read_csv(DATA / "regions.csv"))], source_name="regions.csv"
    )
    sheet = workbook.sheets.get()
    page.add_init_script(RECORD_STREAMS)
    log_in(user)
    page.goto(f"{live_stack.url}/tables/{workbook.pk}/")

    # A change: streamed once, run, saved as a version named after what changed.
    change = ask(page, "Add a column price equal to revenue divided by units", mode="code")
    expect(change.locator("[data-job-status]")).to_have_attribute("data-job-status", "succeeded", timeout=ANSWER_MS)
    message = TableMessage.objects.filter(role="assistant", mode="code").latest("pk")
    stored = Generation.objects.get(job=message.job_id).output
    streamed = page.evaluate("window.__streams")[f"gen-{message.job_id}-output"]
    assert streamed == stored  # every token once, nothing lost
    expect(change.locator(".result-version")).to_contain_text("added column price")
    expect(change.locator(".candidates-summary")).to_be_visible()
    expect(page.locator("#sheet-table thead")).to_contain_text("price")  # the sheet shows the new version

    # A chart that answers the question: one summed bar per region, the table under it.
    chart = ask(page, "Plot total revenue by region as a bar chart")
    expect(chart.locator("img.chart")).to_be_visible(timeout=ANSWER_MS)
    rows = chart.locator(".chart-table tbody tr")
    expect(rows).to_have_count(3)
    totals = {
        rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i).locator("td").nth(1).inner_text() for i in range(3)
    }
    expected = sales.groupby("region")["revenue"].sum()
    assert {k: float(v) for k, v in totals.items()} == {k: float(v) for k, v in expected.items()}
    screenshot("tables-answers-desktop")

    # A broken run is a failed job that says what went wrong, in words.
    change.locator("details.edit-code summary").click()
    change.locator("textarea[name=code]").fill("result = df[")
    change.locator("details.edit-code button[type=submit]").click()
    broken = page.locator(".turn.assistant").last
    expect(broken.locator("[data-job-status]")).to_have_attribute("data-job-status", "failed", timeout=120_000)
    expect(broken.locator('[data-failure-kind="syntax"]')).to_have_text(
        "The code is not valid Python (a syntax error)."
    )
    expect(broken.locator(".bubble")).not_to_contain_text("Refused")

    # Undo puts the sheet back.
    page.reload()
    expect(page.locator("#versions tr.current")).to_have_attribute("data-version", "2")
    page.click("#undo-button")
    expect(page.locator("#versions tr.current")).to_have_attribute("data-version", "1")

    # No Tables page is wider than a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    sheet.refresh_from_db()
    version = sheet.versions.order_by("-number").first()
    other = Sheet.objects.get(workbook__owner=user, name="Regions")
    for path in (
        "/tables/",
        f"/tables/{workbook.pk}/",
        f"/tables/sheets/{sheet.pk}/diff/?b={version.pk}",
        f"/tables/sheets/{sheet.pk}/merge/?other={other.pk}",
    ):
        page.goto(f"{live_stack.url}{path}")
        page.wait_for_load_state("networkidle")
        no_horizontal_overflow(page)
    page.goto(f"{live_stack.url}/tables/{workbook.pk}/")
    # Each version stays on one line at phone width (the list scrolls in its box); "current"
    # and the description were broken inside words ("curren|t", "Uploa|ded").
    for cell in page.locator("#versions tr td").all():
        assert cell.evaluate(ONE_LINE), cell.inner_text()
    screenshot("tables-answers-phone")
