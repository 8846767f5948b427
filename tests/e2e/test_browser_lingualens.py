"""A researcher in a real browser: train a tiny SAE on a layer of Gemma-3-270m through the
worker, open a feature page with real top contexts, run a search, and steer with a latent."""

import re

import pytest
from playwright.sync_api import expect

from apps.lingualens import services
from apps.lingualens.models import Corpus, LinguisticFeature
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def tiny_corpus() -> Corpus:
    services.load_default_catalogue()
    texts = services.ensure_default_corpus().texts[:30]
    for name in ("Passive voice", "把 construction"):
        for pair in LinguisticFeature.objects.get(name=name).pairs.all()[:12]:
            texts += [pair.sentence, pair.counterfactual]
    return Corpus.objects.create(name="Tiny e2e corpus", source="test", texts=texts, n_chars=sum(map(len, texts)))


def test_train_open_feature_search_and_steer(page, log_in, live_stack, screenshot):
    corpus = tiny_corpus()
    log_in(UserFactory(username="e2e-lens", role="researcher"))
    page.goto(f"{live_stack.url}/lingualens/")
    page.select_option("#id_corpus", str(corpus.pk))
    for field, value in {
        "#id_layer": "3",
        "#id_width": "128",
        "#id_k": "8",
        "#id_tokens": "20000",
        "#id_tpt": "24",
    }.items():
        page.fill(field, value)
    page.click("#train-form button[type=submit]")
    expect(page.locator("h1 .badge")).to_have_text("Complete", timeout=240_000)  # the page reloads itself
    expect(page.locator("#sae-metrics")).to_contain_text("CE loss recovered")
    page.wait_for_load_state("networkidle")
    screenshot("lingualens-sae")

    page.locator("#latents tbody tr a").first.click()
    expect(page).to_have_url(re.compile(r"/lingualens/features/gemma3-270m@l3-w128-k8(-\d+)?:\d+/$"))
    expect(page.locator("#top-contexts .ll-context").first).to_be_visible()
    expect(page.locator("#top-contexts .ll-tok.focus").first).to_be_visible()
    page.fill("#id_note", "fires on common tokens")
    page.click("#note-form button[type=submit]")
    expect(page.locator("#id_note")).to_have_value("fires on common tokens")
    page.wait_for_load_state("networkidle")
    screenshot("lingualens-feature")

    page.goto(f"{live_stack.url}/lingualens/search/")
    page.fill("#id_sentence", "The window was opened by Anna.")
    page.click("#search-form button[type=submit]")
    expect(page.locator("#search-result")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.locator(".ll-search-token").first).to_contain_text("The")
    screenshot("lingualens-search")
    page.locator(".ll-latent-chip").first.click()
    expect(page.locator("h1.ll-fid")).to_contain_text("gemma3-270m@l3-w128-k8")

    page.click("text=Steer with this latent")
    page.fill("#id_prompt", "My favourite food is")
    # default strength 2: twice the latent's typical top activation (apps/lingualens/steering.py)
    expect(page.locator("#id_interventions")).to_have_value(re.compile(r"^\d+:2$"))
    page.fill("#id_max_tokens", "12")
    page.click("#steer-form button[type=submit]")
    expect(page.locator(".job-status")).to_have_attribute("data-status", "succeeded", timeout=90_000)
    plain = page.locator("[id$='-plain']").inner_text()
    steered = page.locator("[id$='-steered']").inner_text()
    assert plain.strip()
    assert steered.strip()
    screenshot("lingualens-steer")

    # On a phone the pages fit the window: a wide table scrolls inside its own box.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_stack.url}/lingualens/")
    expect(page.locator("#sae-list tbody tr")).to_have_count(1)  # the list that overflowed before
    for path in ("/lingualens/", "/lingualens/catalogue/", "/lingualens/search/"):
        page.goto(f"{live_stack.url}{path}")
        width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= viewport, f"{path} is {width} px wide in a {viewport} px window"
    screenshot("lingualens-phone")
