"""The assistant model's second opinion never holds up the parser's answer: the `kbqa.ask` job
saves the parser's answer, and when the parser is unsure a `kbqa.draft` job (interactive queue)
drafts afterwards, scores the draft beside the parser's candidates and replaces the answer only
when the draft scores higher. The page and the API say where the draft stands and which source
answered. Job bodies run here as the workers run them (apps/kbqa/tasks.py); the draft asks the real
assistant model through the shared llama.cpp server."""

import json
from pathlib import Path

import pytest

from apps.jobs.models import JobStatus
from apps.jobs.services import run_job
from apps.kbqa import drafting, services
from apps.kbqa.models import Question
from apps.kbqa.ontology import load_ontology, run
from tests.kbqa.conftest import TESTS_DATA
from tests.live import free_port

pytestmark = pytest.mark.model

NATURAL = Path(__file__).resolve().parents[2] / "bench" / "data" / "kbqa_natural.json"
# A natural question on the hand-made cinema KB (never used in training) where the geo-trained
# parser of tests/kbqa/conftest.py is unsure (a rival program with another answer within 0.52 nats,
# under drafting.DRAFT_MARGIN) and wrong (it reads Syncopy's own inception), and the assistant's
# draft (Find Syncopy, Relate founded by, QueryAttr date of birth) wins.
WON_BY_THE_DRAFT = "When was the founder of Syncopy born?"


@pytest.fixture
def cinema_kb(db):
    data = json.loads((TESTS_DATA / "cinema_kb.json").read_text(encoding="utf-8"))
    return services.import_kb(None, "cinema", data, title="Cinema")


@pytest.fixture
def patient_drafts(monkeypatch):
    """The app's own drafting backend, waiting as long as the shared server needs (its 60 s limit
    would make the test depend on how busy the machine is)."""
    monkeypatch.setattr(drafting, "DRAFT_TIMEOUT", 900.0)
    monkeypatch.setattr(drafting, "_draft_backends", {})


@pytest.fixture
def no_model_server(settings, monkeypatch):
    """The assistant role pointed at a port nothing listens on: every draft request is refused."""
    from apps.inference.registry import all_models

    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setattr(drafting, "_draft_backends", {})
    all_models.cache_clear()
    yield
    all_models.cache_clear()


def gold_answer(kb, text: str):
    item = next(item for item in json.loads(NATURAL.read_text(encoding="utf-8")) if item["question"] == text)
    return run(load_ontology(kb), item["program"], strict=False)


def reload(question: Question) -> Question:
    return Question.objects.select_related("kb", "job", "draft_job").get(pk=question.pk)


def answered_by_the_parser(user, kb, text: str) -> Question:
    """Ask and run the ask job (the cpu worker's part); the draft job is left queued."""
    question = services.ask(user, kb, text)
    run_job(question.job_id, services.answer)
    return reload(question)


def same(got, want) -> bool:
    return sorted(map(str, got)) == sorted(map(str, want)) if isinstance(want, list) else got == want


def test_the_answer_is_saved_before_the_draft_and_a_winning_draft_replaces_it(
    assistant_server, patient_drafts, cinema_kb, geo_parser, researcher, client_for
):
    question = answered_by_the_parser(researcher, cinema_kb, WON_BY_THE_DRAFT)
    first = services.question_json(question)
    # The parser's answer is there while the draft has not even started.
    assert first["status"] == "done"
    assert first["steps"]
    assert first["answer"] is not None
    assert first["source"] == "parser"
    assert first["draft_status"] == "pending"
    assert first["draft"]["reason"]
    assert question.draft_job.kind == "kbqa.draft"
    assert question.draft_job.queue == "interactive"
    assert question.draft_job.status == JobStatus.QUEUED
    gold = gold_answer(cinema_kb, WON_BY_THE_DRAFT)
    assert not same(first["answer"], gold)  # the parser alone gets this one wrong

    client = client_for(researcher)
    page = client.get(f"/kbqa/questions/{question.pk}/")
    assert b"a second opinion from the assistant model is being drafted" in page.content
    assert b'id="draft-status" data-status="pending"' in page.content
    assert b'data-source="parser"' in page.content
    assert client.get(f"/kbqa/questions/{question.pk}/?poll=1").status_code == 200  # the answer is shown
    assert client.get(f"/kbqa/questions/{question.pk}/?poll=draft").status_code == 204  # the draft is awaited

    run_job(question.draft_job_id, services.draft)  # the interactive worker's part, with the real model
    question = reload(question)
    data = services.question_json(question)
    assert question.draft_job.status == JobStatus.SUCCEEDED
    assert data["draft_status"] == "done"
    assert data["source"] == "draft"
    assert same(data["answer"], gold)
    assert data["program"] == data["draft"]["program"]
    assert data["sources"] == ["draft", "parser"]
    # The parser's program, which answered first, is now a scored alternative below the draft.
    parser_alternatives = [alt for alt in data["alternatives"] if alt["source"] == "parser"]
    assert any(same(alt["answer"], first["answer"]) for alt in parser_alternatives)
    assert all(alt["score"] < data["draft"]["score"] for alt in parser_alternatives)

    page = client.get(f"/kbqa/questions/{question.pk}/?poll=draft", HTTP_HX_REQUEST="true")
    assert page.status_code == 200  # the poll swaps the finished page in
    assert b'data-source="draft"' in page.content
    assert b"Answered by the assistant model's draft" in page.content
    assert b'data-status="done"' in page.content
    api = client_for(researcher).get(f"/api/kbqa/questions/{question.pk}")
    assert api.status_code == 200
    assert api.json()["draft_status"] == "done"
    assert api.json()["source"] == "draft"


def test_a_failed_draft_leaves_the_parsers_answer_and_says_so(
    no_model_server, cinema_kb, geo_parser, researcher, client_for
):
    question = answered_by_the_parser(researcher, cinema_kb, WON_BY_THE_DRAFT)
    first = services.question_json(question)
    assert first["draft_status"] == "pending"

    run_job(question.draft_job_id, services.draft)
    question = reload(question)
    data = services.question_json(question)
    assert question.draft_job.status == JobStatus.FAILED
    assert data["draft_status"] == "failed"
    assert data["draft_error"].startswith("The assistant model gave no draft")
    assert data["draft"]["failed"] is True
    assert data["source"] == "parser"
    assert data["answer"] == first["answer"]
    assert data["program"] == first["program"]
    page = client_for(researcher).get(f"/kbqa/questions/{question.pk}/")
    assert b'data-status="failed"' in page.content
    assert b"draft failed" in page.content
    assert b"the parser's answer stands" in page.content


def test_a_sure_parse_asks_for_no_draft(cinema_kb, geo_parser, researcher, client_for):
    # The tests' parser reads this one with no rival within 5 nats.
    text = "Which of Steven Spielberg's films made the most at the box office?"
    question = answered_by_the_parser(researcher, cinema_kb, text)
    data = services.question_json(question)
    assert question.draft_job_id is None
    assert data["draft_status"] == "none"
    assert data["sources"] == ["parser"]
    assert same(data["answer"], gold_answer(cinema_kb, text))
    page = client_for(researcher).get(f"/kbqa/questions/{question.pk}/")
    assert b'id="draft-status"' not in page.content
    assert b"Answered by the sketch and argument parser." in page.content
