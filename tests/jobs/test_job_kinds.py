"""The job contract: every kind named '<app label>.<action>', on a known queue, with a Celery task
of the same name that Celery discovers and routes to that queue; old kind names migrate."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.jobs import kinds
from apps.jobs.kinds import JOB_KINDS, QUEUES, TASK_QUEUES, JobKind
from apps.jobs.models import Job
from config.celery import app as celery_app


@pytest.fixture(scope="module")
def discovered() -> dict:
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    return {name: task for name, task in celery_app.tasks.items() if not name.startswith("celery.")}


def routed_queue(name: str) -> str | None:
    return celery_app.amqp.router.route({}, name).get("queue").name


def test_every_app_with_jobs_registers_them_in_one_style():
    labels = {config.label for config in django_apps.get_app_configs()}
    assert {kind.split(".")[0] for kind in JOB_KINDS} >= {"jobs", "inference", "tables", "pbl", "lingualens", "kbqa"}
    for name, kind in JOB_KINDS.items():
        app_label, _action = name.split(".")
        assert app_label in labels, name
        assert kind.queue in QUEUES, name


def test_each_kind_has_its_task_and_is_routed_to_its_queue(discovered):
    for name, kind in JOB_KINDS.items():
        assert name in discovered, f"no Celery task named {name!r} in apps/{name.split('.')[0]}/tasks.py"
        assert discovered[name].__module__ == f"apps.{name.split('.')[0]}.tasks"
        assert routed_queue(name) == kind.queue


def test_every_discovered_task_has_a_stated_queue(discovered):
    """No task reaches a queue by accident (the default queue) or by a caller's queue=."""
    assert set(discovered) == set(TASK_QUEUES)
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in discovered
        assert "queue" not in entry.get("options", {})


def test_queues_are_where_the_work_belongs():
    assert JOB_KINDS["lingualens.train"].queue == "batch"
    assert JOB_KINDS["kbqa.train"].queue == "batch"
    assert JOB_KINDS["inference.generate"].queue == "interactive"
    assert JOB_KINDS["pbl.agent_reply"].queue == "interactive"
    assert JOB_KINDS["tables.run"].queue == "cpu"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (JobKind("kbqa_train", "batch"), "not named"),
        (JobKind("Kbqa.Train", "batch"), "not named"),
        (JobKind("kbqa.train", "gpu"), "names the queue 'gpu'"),
        (JobKind("kbqa.train", "cpu"), "registered twice"),
        (JobKind("kbqa.train", "batch", "somewhere.else"), "registered twice"),
    ],
)
def test_a_bad_or_conflicting_registration_stops_start_up(kind, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        kinds.register_job_kinds(kind)


def test_registering_the_same_kind_again_is_harmless():
    before = dict(JOB_KINDS)
    kinds.register_job_kinds(JOB_KINDS["kbqa.ask"])
    assert before == JOB_KINDS


def test_stored_kind_names_migrate_both_ways(student):
    migration = importlib.import_module("apps.jobs.migrations.0002_kind_names_app_action")
    old = {name: Job.objects.create(owner=student, kind=name, queue="cpu").pk for name in migration.RENAMED}
    migration.forwards(django_apps, None)
    renamed = dict(Job.objects.filter(pk__in=old.values()).values_list("pk", "kind"))
    assert {renamed[pk] for pk in old.values()} == set(migration.RENAMED.values())
    assert set(migration.RENAMED.values()) <= set(JOB_KINDS)  # every old row now names a live kind
    migration.backwards(django_apps, None)
    assert dict(Job.objects.filter(pk__in=old.values()).values_list("kind", "pk")) == old


@pytest.mark.django_db
def test_job_pages_name_each_kind_in_the_readers_language(client_for, researcher):
    """The job list showed "lingualens.default_set"; every kind now has a name a reader knows."""
    from django.utils import translation

    from apps.jobs.models import Job

    assert all(kind.label for kind in JOB_KINDS.values())
    job = Job.objects.create(owner=researcher, kind="lingualens.train", queue="batch")
    client = client_for(researcher)
    listing = client.get("/jobs/").content.decode()
    assert "SAE training" in listing
    assert client.get(f"/jobs/{job.pk}/").content.decode().count("SAE training") == 1
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    try:
        assert "训练 SAE" in client.get("/jobs/").content.decode()
        assert "训练 SAE" in client.get(f"/jobs/{job.pk}/").content.decode()
    finally:
        translation.deactivate()  # LocaleMiddleware leaves the request's language active in this thread
