"""A refused chat message says why, in place: the view answers 422 with the error fragment,
and htmx 2 (which swaps no 4xx answer by default) is configured in base.html to swap it."""

import pytest
from playwright.sync_api import expect

from apps.pbl import services
from apps.pbl.models import ChatMessage
from tests.pbl.conftest import open_demo_run

pytestmark = [pytest.mark.e2e, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_chat_error_is_shown_beside_the_form_and_the_text_is_kept(page, log_in, live_stack):
    run, [lena] = open_demo_run("e2e-tom", "Science 8C", "e2e-lea")
    team = services.join_team(lena, run, "Otters")

    log_in(lena)
    page.goto(f"{live_stack.url}/pbl/teams/{team.pk}/")
    statuses = []
    page.on(
        "response", lambda r: statuses.append(r.status) if "/messages" in r.url and r.request.method == "POST" else None
    )
    page.fill("#chat-form textarea", "   ")
    page.click("#chat-form button[type=submit]")
    error = page.locator("#chat-error")
    expect(error).to_have_class("message error has-error")
    expect(error).to_contain_text("Write a message first.")
    assert 422 in statuses  # the error came back as a 422 and was swapped in anyway

    # Too long: the error names the limit and what was typed stays in the box.
    long_text = "lead " * 900
    page.evaluate("document.querySelector('#chat-form textarea').removeAttribute('maxlength')")
    page.fill("#chat-form textarea", long_text)
    page.click("#chat-form button[type=submit]")
    expect(error).to_contain_text("too long")
    expect(page.locator("#chat-form textarea")).to_have_value(long_text)
    assert not ChatMessage.objects.filter(team=team).exists()

    # A fair message afterwards clears the error.
    page.fill("#chat-form textarea", "What should we measure first?")
    page.click("#chat-form button[type=submit]")
    expect(page.locator("#chat-log .msg-learner").last).to_contain_text("What should we measure first?")
    expect(error).not_to_have_class("message error has-error")
