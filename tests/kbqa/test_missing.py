"""Reading what a question asks about. A thing the KB holds nothing like ("Which river of China
is the longest?" on a KB without rivers) is answered that the KB has no such thing, not with
whatever entity a program that dropped the word finds ("China"); the class a question asks for
("which currency") ranks programs naming another class lower; a class word ("cities") is not read
as a relation that merely shares it ("largest city")."""

import math

import pytest

from apps.accounts.services import create_api_token
from apps.jobs.services import run_job
from apps.kbqa import drafting, services
from apps.kbqa.arguments import class_word_only
from apps.kbqa.parser import asked_class, parse_question
from apps.kbqa.reading import MIN_COVER, coverage, question_context, unmatched_phrase
from tests.kbqa.conftest import step

pytestmark = pytest.mark.model


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("Which river of China is the longest?", "river"),
        ("What is the longest river in China?", "river"),
        ("What is the highest mountain of Japan?", "mountain"),
        ("How many airports does Japan have?", "airports"),
    ],
)
def test_a_thing_the_kb_does_not_hold_is_named(geo_onto, question, missing):
    assert unmatched_phrase(question_context(question, geo_onto)) == missing


@pytest.mark.parametrize(
    "question",
    [
        "Which city in Germany has the largest population?",
        "What is the most populous city of India?",
        "Which former countries were dissolved after 1990?",
        "Which time zone is the capital of Argentina in?",
        "How many countries border China?",
        "In which year was the Soviet Union dissolved?",  # "year" asks for a date, not a thing
        "What relation does Hidalgo have to Mexico?",  # words about the KB's own structure
        "Which countries are in Oceania?",
    ],
)
def test_what_the_kb_holds_or_paraphrases_is_not(geo_onto, question):
    assert unmatched_phrase(question_context(question, geo_onto)) is None


def test_the_parse_says_so_and_asks_for_no_draft(geo_onto, sketch_classifier):
    parsed = parse_question("Which river of China is the longest?", geo_onto, sketch_classifier)
    assert parsed.missing == "river"
    assert not parsed.complete
    assert parsed.program == []
    assert parsed.error.startswith("This knowledge base has no river")
    # The program the parser would have run stays listed, so it can still be opened and edited.
    assert parsed.alternatives
    assert parsed.alternatives[0]["program"]
    assert drafting.parser_unsure(parsed, geo_onto) is None
    assert parsed.as_json()["missing"] == "river"


def test_through_the_api(client, researcher, geo_kb, geo_parser):
    _token, raw = create_api_token(researcher, "t")
    headers = {"Authorization": f"Bearer {raw}"}
    response = client.post(
        "/api/kbqa/ask",
        {"kb": "geo", "question": "Which river of China is the longest?", "wait": 0},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 202
    question_id = response.json()["id"]
    run_job(response.json()["job"], services.answer)  # what the cpu worker does
    data = client.get(f"/api/kbqa/questions/{question_id}", headers=headers).json()
    assert data["status"] == "done"
    assert data["answer"] is None
    assert data["missing"] == "river"
    assert data["error"].startswith("This knowledge base has no river")
    assert data["draft_status"] == "none"


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("On which continent is the country whose capital is Nairobi?", "continent"),
        ("Which currency is used in Peru?", "currency"),
        ("Which countries border China?", "country"),
        ("Which former countries were dissolved after 1990?", "former country"),
        ("What is the capital of France?", None),
        ("Which has more people, Canada or Australia?", None),
    ],
)
def test_the_class_a_question_asks_for(geo_onto, question, concept):
    """A program naming entities of another class ranks lower ("On which continent is the country
    whose capital is Nairobi?" answered "Kenya")."""
    assert asked_class(question_context(question, geo_onto)) == concept


@pytest.mark.parametrize(
    ("question", "capped"),
    [
        ("How many cities does Brazil have?", True),
        ("Which cities in Australia have more than 2 million people?", True),
        ("What is the largest city of Brazil?", False),
    ],
)
def test_a_relation_sharing_only_the_class_word_is_not_read_from_it(geo_onto, question, capped):
    """The class word "cities" alone does not pick the relation "largest city"."""
    concepts = set(geo_onto.concepts.values())
    assert class_word_only(question_context(question, geo_onto), "largest city", concepts) is capped


def test_a_label_written_out_and_not_used_is_unexplained(geo_onto):
    """In "the capital of Argentina" a program that skips the relation written out in full scores
    the lowest coverage for that word, however close "capital" is to its other labels."""
    ctx = question_context("Which time zone is the capital of Argentina in?", geo_onto)
    skipped = [
        step("Find", [], "Argentina"),
        step("Relate", [0], "located in time zone", "forward"),
        step("FilterConcept", [1], "time zone"),
        step("QueryName", [2]),
    ]
    followed = [
        step("Find", [], "Argentina"),
        step("Relate", [0], "capital", "forward"),
        step("Relate", [1], "located in time zone", "forward"),
        step("QueryName", [2]),
    ]
    assert coverage(ctx, skipped) == pytest.approx(math.log(MIN_COVER))
    assert coverage(ctx, followed) == pytest.approx(0.0)
