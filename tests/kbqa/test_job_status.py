"""Parsers, questions and imports have no status of their own to keep in step: they read it from
their job (apps.jobs.models.JobBacked), plus what only the row knows."""

from django.utils import timezone

from apps.jobs import services as job_services
from apps.jobs.models import Job, JobStatus
from apps.kbqa.models import KBImport, ParserModel, Question


def job_of(owner, kind: str, status: str, error: str = "") -> Job:
    return Job.objects.create(owner=owner, kind=kind, queue="cpu", status=status, error=error)


def test_a_question_follows_its_job(tiny_kb, student):
    job = job_of(student, "kbqa.ask", JobStatus.QUEUED)
    question = Question.objects.create(owner=student, kb=tiny_kb, text="?", job=job)
    assert question.status == Question.Status.PENDING
    job_services.fail_job(job, "RuntimeError: the worker fell over")
    question.refresh_from_db()
    assert question.status == Question.Status.FAILED
    assert question.failure == "RuntimeError: the worker fell over"
    rerun = Question.objects.create(owner=student, kb=tiny_kb, text="?", edited_from=question)
    assert rerun.status == Question.Status.DONE  # run at once, without a job


def test_a_cancelled_question_is_failed_and_a_partial_parse_keeps_its_reason(tiny_kb, student):
    cancelled = Question.objects.create(
        owner=student, kb=tiny_kb, text="?", job=job_of(student, "kbqa.ask", JobStatus.CANCELLED)
    )
    assert cancelled.status == Question.Status.FAILED
    partial = Question.objects.create(
        owner=student, kb=tiny_kb, text="?", job=job_of(student, "kbqa.ask", JobStatus.SUCCEEDED), error="no entity"
    )
    assert partial.status == Question.Status.DONE
    assert partial.failure == "no entity"


def test_a_parser_is_ready_once_trained_and_failed_when_its_job_stopped(tiny_kb, researcher):
    training = ParserModel.objects.create(source_kb=tiny_kb, job=job_of(researcher, "kbqa.train", JobStatus.RUNNING))
    stopped = ParserModel.objects.create(source_kb=tiny_kb, job=job_of(researcher, "kbqa.train", JobStatus.FAILED))
    ready = ParserModel.objects.create(source_kb=tiny_kb, trained_at=timezone.now())
    assert [training.status, stopped.status, ready.status] == [
        ParserModel.Status.TRAINING,
        ParserModel.Status.FAILED,
        ParserModel.Status.READY,
    ]
    assert list(ParserModel.objects.ready()) == [ready]


def test_an_import_is_refused_for_its_content_even_when_its_job_succeeded(tiny_kb, researcher):
    def upload(status: str, **fields) -> KBImport:
        return KBImport.objects.create(
            owner=researcher, name="x", job=job_of(researcher, "kbqa.import", status), **fields
        )

    assert upload(JobStatus.QUEUED).status == KBImport.Status.QUEUED
    assert upload(JobStatus.SUCCEEDED, kb=tiny_kb).status == KBImport.Status.DONE
    assert upload(JobStatus.SUCCEEDED, errors=["entities.x: no name"]).status == KBImport.Status.FAILED
    assert upload(JobStatus.FAILED).status == KBImport.Status.FAILED
