"""The KBQA pages read what they show from stored summaries, never a KB's JSON; examples read
as English; the ask page opens on the KB whose examples read best; an edited re-run is
labelled as the edited program."""

import json
import re
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.kbqa import services, summary
from apps.kbqa.builders import DATA_DIR
from apps.kbqa.examples import example_questions, noun_label, plural
from apps.kbqa.models import KnowledgeBase
from tests.kbqa.conftest import step

DATA_COLUMN = '"kbqa_knowledgebase"."data"'


def reads_kb_json(queries) -> bool:
    return any(DATA_COLUMN in query["sql"] for query in queries)


def test_pages_never_read_a_kbs_json(client_for, researcher, geo_kb):
    client = client_for(researcher)
    summary.kb_summary(geo_kb)  # stored at import already; this is a no-op
    summary.entity_rows(geo_kb)  # the browse table's rows, once per process
    for url in ("/kbqa/", "/kbqa/?kb=geo", "/kbqa/kbs/", "/kbqa/kbs/geo/", "/kbqa/kbs/geo/?q=paris"):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        assert not reads_kb_json(queries.captured_queries), url
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        client.get("/kbqa/")
        timings.append(time.perf_counter() - started)
    print(f"/kbqa/ render times (s): {[round(t, 4) for t in timings]}")
    # The goal is 50 ms alone; a loaded shared test machine gets headroom, the old page took 1.1 s.
    assert sorted(timings)[2] < 0.25, timings


def test_question_page_does_not_read_the_kbs_json(client_for, researcher, geo_kb):
    program = [step("Find", [], "France"), step("Relate", [0], "capital", "forward"), step("QueryName", [1])]
    from apps.kbqa.models import Question

    original = Question.objects.create(owner=researcher, kb=geo_kb, text="What is the capital of France?")
    edited = services.rerun(researcher, original, program)
    with CaptureQueriesContext(connection) as queries:
        response = client_for(researcher).get(f"/kbqa/questions/{edited.pk}/")
    assert response.status_code == 200
    assert not reads_kb_json(queries.captured_queries)


def test_an_edited_rerun_is_labelled_as_the_edited_program(client_for, researcher, geo_kb):
    from apps.kbqa.models import Question

    original = Question.objects.create(owner=researcher, kb=geo_kb, text="What is the capital of France?")
    program = [step("Find", [], "Germany"), step("Relate", [0], "capital", "forward"), step("QueryName", [1])]
    edited = services.rerun(researcher, original, program)
    client = client_for(researcher)
    page = client.get(f"/kbqa/questions/{edited.pk}/").content.decode()
    title = re.search(r'<h1 class="question-title" id="question-title">(.*?)</h1>', page).group(1)
    assert title.startswith("Edited program: Find(Germany)")
    assert "What is the capital of France?" not in title
    assert "edited from the parsed program of" in page
    history = client.get("/kbqa/").content.decode()
    rows = re.findall(r'<a href="/kbqa/questions/(\d+)/">(.*?)</a>', history)
    assert (str(edited.pk), "Edited program: Find(Germany) → Relate(capital, forward) → QueryName()") in rows
    assert (str(original.pk), "What is the capital of France?") in rows


@pytest.mark.parametrize("name", ["geo", "elements"])
def test_example_questions_are_grammatical(name, request):
    onto = request.getfixturevalue(f"{name}_onto")
    examples = example_questions(onto)
    assert len(examples) >= 5
    for question in examples:
        assert question[0].isupper(), question
        assert question.endswith("?"), question
        # The old examples put verb-like labels into noun slots: "germanium-78 has which isotope of?"
        assert not re.search(r"\b(of|by|with|in)\?$", question), question
        assert not re.search(r"\bof of\b|\bhas which\b|\bin in\b", question), question
        assert not re.search(r"\d", question.split(" of ")[-1].split(" than ")[0]), question  # no coded names
        # Every example is one the KB can answer: its words are the KB's labels.
        labels = onto.attribute_keys + onto.relations + list(onto.concepts.values())
        assert any(label in question or plural(label) in question for label in labels), question


def test_labels_and_plurals():
    labels = ("population", "capital", "isotope of", "shares border with", "ISO 3166-2 code")
    assert [noun_label(x) for x in labels] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert [plural(x) for x in ("city", "country", "capital city", "box", "film", "day")] == [
        "cities",
        "countries",
        "capital cities",
        "boxes",
        "films",
        "days",
    ]


def test_the_ask_page_opens_on_the_kb_whose_examples_read_best(client_for, researcher, geo_kb):
    elements = services.import_kb(
        None, "elements", json.loads((DATA_DIR / "elements.json").read_text(encoding="utf-8")), title="Elements"
    )
    kbs = list(services.list_kbs())
    best = max(kbs, key=lambda kb: kb.summary["readability"])
    assert summary.default_kb(kbs).name == best.name
    page = client_for(researcher).get("/kbqa/").content.decode()
    assert f'<option value="{best.name}" selected>' in page.replace("  ", " ")
    for example in best.summary["examples"]:
        assert example.replace("'", "&#x27;") in page
    # A summary computed before the column existed (or for old content) is rebuilt once and stored.
    KnowledgeBase.objects.filter(pk=elements.pk).update(summary={})
    stale = services.list_kbs().get(pk=elements.pk)
    assert summary.kb_summary(stale)["examples"] == elements.summary["examples"]
    assert KnowledgeBase.objects.get(pk=elements.pk).summary["hash"] == elements.content_hash
