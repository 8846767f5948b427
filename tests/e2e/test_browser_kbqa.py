"""A user browses a knowledge base and searches its entities in a real browser."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.kbqa import services
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TINY = Path(__file__).resolve().parents[1] / "kbqa" / "data" / "tiny_kb.json"


def test_browse_and_search_a_kb(page, log_in, live_stack, screenshot):
    data = json.loads(TINY.read_text())
    services.import_kb(None, "tiny", data, title="Tiny")
    log_in(UserFactory(username="e2e-kb", role="student"))
    page.click("nav.areas a[data-area=kbqa]")
    page.click("text=Tiny")
    expect(page.locator("h1")).to_contain_text("Tiny")
    names = sorted(entity["name"] for entity in data["entities"].values())
    wanted, other = names[0], names[-1]
    page.fill("#entity-search", wanted)
    expect(page.locator("#entities")).to_contain_text(wanted)
    expect(page.locator("#entities")).not_to_contain_text(other)  # the search narrowed the list
    screenshot("kbqa-browse")
