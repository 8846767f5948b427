"""Asking through the services, pages and API: training a parser, parsing in the worker's
function, editing a program and re-running it, and who may see or do what."""

import pytest

from apps.jobs.services import run_job
from apps.kbqa import services, training
from apps.kbqa.models import ParserModel, Question

pytestmark = pytest.mark.model


def run_ask_job(question: Question) -> Question:
    """What the cpu worker does for a kbqa.ask job (apps/kbqa/tasks.py), in this process."""
    run_job(question.job_id, services.answer)
    question.refresh_from_db()
    return question


def test_fit_parser_generates_pairs_trains_and_measures(geo_kb, researcher):
    parser = ParserModel.objects.create(source_kb=geo_kb, created_by=researcher)
    seen = []
    training.fit_parser(parser, pairs=300, seed=4, progress=lambda f, m: seen.append(f))
    parser.refresh_from_db()
    assert parser.status == ParserModel.Status.READY
    assert parser.metrics["pairs"] == 300
    assert parser.metrics["train_size"] + parser.metrics["test_size"] == 300
    assert 0 <= parser.metrics["sketch_accuracy"] <= 1
    assert {row["split"] for row in parser.dataset} == {"train", "test"}
    assert seen == sorted(seen)
    assert seen[-1] < 1


def test_ask_parse_run_and_edit_an_argument(geo_kb, geo_parser, researcher):
    question = services.ask(researcher, geo_kb, "What is the capital of France?")
    assert question.status == "pending"
    assert question.job_id
    question = run_ask_job(question)
    data = services.question_json(question)
    assert data["status"] == "done"
    assert data["answer"] == ["Paris"]
    assert data["sketch"] == "Find() Relate(0) QueryName(1)"
    assert [s["output"] for s in data["steps"]][-1]["values"] == ["Paris"]
    assert data["candidates"][1]["after"] < data["candidates"][1]["before"]

    edited_program = [dict(s) for s in question.program]
    edited_program[0] = {**edited_program[0], "inputs": ["Germany"]}
    edited = services.rerun(researcher, question, edited_program)
    assert edited.edited_from == question
    assert edited.execution["answer"] == ["Berlin"]


def test_a_wrong_argument_is_reported_at_its_step(geo_kb, geo_parser, researcher):
    question = run_ask_job(services.ask(researcher, geo_kb, "What is the capital of France?"))
    broken = [dict(s) for s in question.program]
    broken[1] = {**broken[1], "inputs": ["capitol", "forward"]}
    edited = services.rerun(researcher, question, broken)
    assert edited.execution["steps"][1]["error"].startswith("no relation 'capitol'")
    assert "did you mean" in edited.execution["steps"][1]["error"]
    assert edited.execution["steps"][2]["error"] == "skipped: step 1 failed"


def test_bad_questions_are_refused_up_front(geo_kb, researcher):
    from django.core.exceptions import ValidationError

    for text in ["", "   ", "x" * 501]:
        with pytest.raises(ValidationError):
            services.ask(researcher, geo_kb, text)
    assert not Question.objects.exists()


def test_ask_page_question_page_and_rerun_form(client_for, researcher, student, geo_kb, geo_parser):
    client = client_for(researcher)
    page = client.get("/kbqa/?kb=geo")
    assert page.status_code == 200
    assert b"Try one of these" in page.content

    refused = client.post("/kbqa/", {"kb": "geo", "question": "  "}, follow=True)
    assert b"Type a question first." in refused.content
    assert not Question.objects.exists()

    response = client.post("/kbqa/", {"kb": "geo", "question": "Which has a larger area, France or Germany?"})
    question = Question.objects.get()
    assert response.url == f"/kbqa/questions/{question.pk}/"
    assert client.get(response.url + "?poll=1").status_code == 204  # pending: htmx polls again
    run_ask_job(question)
    page = client.get(response.url)
    assert page.status_code == 200
    assert b'id="program-graph"' in page.content
    assert b"SelectBetween" in page.content
    assert question.execution["answer"] == "France"

    form = {"mode": "fields"}
    for index, step in enumerate(question.program):
        form[f"function_{index}"] = step["function"]
        form[f"dependencies_{index}"] = ",".join(map(str, step["dependencies"]))
        form[f"inputs_{index}"] = step["inputs"]
    form["inputs_2"] = ["area", "less"]
    rerun = client.post(f"/kbqa/questions/{question.pk}/rerun/", form)
    edited = Question.objects.get(edited_from=question)
    assert rerun.url == f"/kbqa/questions/{edited.pk}/"
    assert edited.execution["answer"] == "Germany"

    counted = run_ask_job(
        services.ask(researcher, geo_kb, "How many countries have a population greater than 100000000?")
    )
    assert isinstance(counted.execution["answer"], int)
    page = client.get(f"/kbqa/questions/{counted.pk}/")
    assert f'<span class="answer-item">{counted.execution["answer"]}</span>'.encode() in page.content

    bad_json = client.post(f"/kbqa/questions/{question.pk}/rerun/", {"mode": "json", "program_json": "[{"}, follow=True)
    assert b"not valid JSON" in bad_json.content

    # Someone else's question is not there for another user.
    assert client_for(student).get(f"/kbqa/questions/{question.pk}/").status_code == 404


def test_only_researchers_and_admins_train_or_evaluate(client_for, student, researcher, geo_kb, geo_parser):
    student_client = client_for(student)
    page = student_client.get("/kbqa/parsers/")
    assert page.status_code == 200
    assert b"train-form" not in page.content
    assert student_client.post("/kbqa/parsers/", {"action": "train", "source": "geo"}).status_code == 403
    assert not ParserModel.objects.exclude(pk=geo_parser.pk).exists()

    researcher_client = client_for(researcher)
    researcher_client.post("/kbqa/parsers/", {"action": "train", "source": "geo", "pairs": "500"})
    training = ParserModel.objects.exclude(pk=geo_parser.pk).get()
    assert training.job.kind == "kbqa.train"
    assert training.job.params["pairs"] == 500
    researcher_client.post("/kbqa/parsers/", {"action": "evaluate", "parser": geo_parser.pk, "targets": ["geo"]})
    assert geo_parser.evaluations.get().job.kind == "kbqa.evaluate"


def test_evaluation_scores_in_kb_and_transfer(geo_kb, geo_parser, researcher, db):
    import json

    from apps.kbqa import services
    from apps.kbqa.builders import DATA_DIR

    elements = json.loads((DATA_DIR / "elements.json").read_text(encoding="utf-8"))
    services.import_kb(None, "elements", elements, title="Elements")
    geo_parser.dataset = [
        {**e, "split": "test"}
        for e in [
            {
                "question": "What is the capital of France?",
                "program": [],
                "answer": ["Paris"],
                "sketch": "Find() Relate(0) QueryName(1)",
            }
        ]
    ]
    geo_parser.save()
    evaluation = services.request_evaluation(researcher, geo_parser, ["elements"], pairs=12)
    job = evaluation.job
    job.status = "running"
    services.evaluate(job)
    evaluation.refresh_from_db()
    settings = {(r["kb"], r["setting"], r["wordings"], r["pruning"]) for r in evaluation.results}
    assert ("elements", "transfer", "held-out wordings", True) in settings
    assert ("elements", "transfer", "held-out wordings", False) in settings
    assert ("geo", "in-KB", "trained wordings", True) in settings
    transfer = [r for r in evaluation.results if r["setting"] == "transfer" and r["pruning"]]
    assert all(r["n"] == 12 and r["candidates_after"] <= r["candidates_before"] for r in transfer)
    assert all(0 <= r["answer_accuracy"] <= 1 and r["latency_mean"] > 0 for r in evaluation.results)
