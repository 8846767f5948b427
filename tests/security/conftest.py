"""Owned objects for the security suite: for each WebSocket route, how to make an object that
one user owns and another user (of a role that could own one too) must not reach.

A route with no builder here fails test_every_websocket_route_has_an_owned_object, so a new
route cannot join config/routing.py without joining the suite."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.accounts import throttle
from apps.accounts.models import Cohort, User
from apps.accounts.services import create_api_token
from apps.jobs.models import Job
from tests.factories import UserFactory

PBL_DEMO = Path(__file__).resolve().parents[2] / "apps" / "pbl" / "data" / "clean_water.json"
# The address the suite's clients connect from; cleared after each test so bad-token counts
# from one test never lock out the next.
CLIENT_ADDRESS = "192.0.2.77"


@dataclass
class Owned:
    owner: User
    stranger: User  # same kind of user as the owner, but not allowed this object
    kwargs: dict[str, int]
    extra: dict = field(default_factory=dict)


def job_socket() -> Owned:
    owner, stranger = UserFactory(role="student"), UserFactory(role="student")
    job = Job.objects.create(owner=owner, kind="jobs.count", queue="cpu")
    return Owned(owner, stranger, {"job_id": job.pk})


def generation_socket() -> Owned:
    from apps.inference.models import Generation

    owner, stranger = UserFactory(role="researcher"), UserFactory(role="researcher")
    job = Job.objects.create(owner=owner, kind="inference.generate", queue="interactive", status="running")
    Generation.objects.create(job=job, model_name="smollm2-135m", messages=[{"role": "user", "content": "hi"}])
    return Owned(owner, stranger, {"job_id": job.pk})


def pbl_run():
    from apps.pbl import services
    from apps.pbl.models import ProjectRun, RunStatus

    teacher = UserFactory(role="teacher")
    cohort = Cohort.objects.create(teacher=teacher, name="Security class")
    learners = [UserFactory(role="student") for _ in range(2)]
    cohort.students.add(*learners)
    project = services.create_project(teacher, json.loads(PBL_DEMO.read_text()))
    run = ProjectRun.objects.create(project=project, cohort=cohort, status=RunStatus.OPEN, started_at=timezone.now())
    return teacher, learners, run


def pbl_team_socket() -> Owned:
    from apps.pbl import services

    _teacher, (member, other_member), run = pbl_run()
    team = services.join_team(member, run, "Otters")
    services.join_team(other_member, run, "Herons")  # same run, another team: still a stranger here
    return Owned(member, other_member, {"team_id": team.pk})


def pbl_dashboard_socket() -> Owned:
    teacher, _learners, run = pbl_run()
    other_teacher = UserFactory(role="teacher")
    Cohort.objects.create(teacher=other_teacher, name="Another class")
    return Owned(teacher, other_teacher, {"run_id": run.pk})


def steering_socket() -> Owned:
    from apps.lingualens import services
    from apps.lingualens.models import SAE, ActivationRun, SteeringRun

    owner, stranger = UserFactory(role="researcher"), UserFactory(role="researcher")
    corpus = services.create_corpus(owner, "c", "test", ["a"])
    activation_run = ActivationRun.objects.create(owner=owner, corpus=corpus, layers=[3])
    sae = SAE.objects.create(owner=owner, run=activation_run, slug="sec", layer=3, width=16, k=4)
    job = Job.objects.create(owner=owner, kind=services.STEER_KIND, queue="interactive", status="running")
    SteeringRun.objects.create(owner=owner, job=job, sae=sae, prompt="Hi", interventions=[])
    return Owned(owner, stranger, {"job_id": job.pk})


WS_OWNED: dict[str, Callable[[], Owned]] = {
    "ws/jobs/<int:job_id>/": job_socket,
    "ws/generations/<int:job_id>/": generation_socket,
    "ws/pbl/teams/<int:team_id>/": pbl_team_socket,
    "ws/pbl/runs/<int:run_id>/dashboard/": pbl_dashboard_socket,
    "ws/lingualens/steering/<int:job_id>/": steering_socket,
}


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def token_for(user: User) -> str:
    _token, raw = create_api_token(user, "security-suite")
    return raw


@pytest.fixture(autouse=True)
def forget_failures():
    yield
    for kind in (throttle.ADDRESS, throttle.TOKEN_ADDRESS):
        throttle.clear(kind, CLIENT_ADDRESS)
        throttle.clear(kind, "127.0.0.1")
