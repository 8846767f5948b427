"""The playground streams a real answer from SmolLM2 in a real browser."""

import pytest
from playwright.sync_api import expect

from apps.inference.models import Generation
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db(transaction=True)]


def test_playground_streams_and_survives_reload(page, log_in, live_stack, screenshot):
    log_in(UserFactory(username="e2e-researcher", role="researcher"))
    page.goto(f"{live_stack.url}/inference/playground/")
    page.fill("textarea[name=message]", "What is a lighthouse?")
    page.click("details summary")
    page.fill("input[name=max_tokens]", "48")
    page.fill("input[name=temperature]", "0")
    page.click("#playground-form button[type=submit]")
    status = page.locator(".gen-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=120_000)
    output = page.locator(".bubble.model")
    text = output.inner_text().strip()
    assert text
    generation = Generation.objects.get(job__owner__username="e2e-researcher")
    assert text == generation.output.strip()
    expect(page.locator(".gen-status .stat").first).to_contain_text("tokens/s")
    screenshot("playground")
    page.goto(f"{live_stack.url}/inference/generations/{generation.job_id}/")
    assert page.locator(".bubble.model").inner_text().strip() == text


def test_model_output_is_escaped(page, log_in, live_stack):
    """Model output is untrusted: markup in it shows as text, never runs."""
    from apps.jobs.models import Job

    user = UserFactory(username="e2e-escape", role="researcher")
    job = Job.objects.create(owner=user, kind="inference.generate", queue="gpu", status="succeeded")
    Generation.objects.create(
        job=job,
        model_name="smollm2-135m",
        messages=[{"role": "user", "content": "x"}],
        output='<img src=x onerror="window.pwned=1"><b>bold</b>',
    )
    log_in(user)
    page.goto(f"{live_stack.url}/inference/generations/{job.pk}/")
    expect(page.locator(".bubble.model")).to_contain_text('<img src=x onerror="window.pwned=1">')
    assert page.evaluate("window.pwned") is None
