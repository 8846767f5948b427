import json
from pathlib import Path

import pytest
from django.utils import timezone

from apps.pbl import services
from apps.pbl.models import ProjectRun, RunStatus
from tests.factories import CohortFactory, UserFactory

DATA = Path(__file__).resolve().parents[2] / "apps" / "pbl" / "data"


def demo(name: str = "clean_water") -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def open_demo_run(teacher: str, cohort: str, *students: str) -> tuple[ProjectRun, list]:
    """The demo project, open to a new class of these students (for tests that start cold)."""
    owner = UserFactory(username=teacher, role="teacher")
    users = [UserFactory(username=name, role="student") for name in students]
    group = CohortFactory(teacher=owner, name=cohort)
    group.students.add(*users)
    run = ProjectRun.objects.create(
        project=services.create_project(owner, demo()), cohort=group, status=RunStatus.OPEN, started_at=timezone.now()
    )
    return run, users


@pytest.fixture
def project(teacher):
    return services.create_project(teacher, demo())


@pytest.fixture
def learners(cohort):
    users = [UserFactory(username=name, role="student") for name in ("lena", "omar", "pia")]
    cohort.students.add(*users)
    return users


@pytest.fixture
def run(project, cohort, learners):
    return ProjectRun.objects.create(project=project, cohort=cohort, status=RunStatus.OPEN, started_at=timezone.now())


@pytest.fixture
def team(run, learners):
    lena, omar, _pia = learners
    team = services.join_team(lena, run, "Otters")
    services.join_team(omar, run, "Otters")
    return team


@pytest.fixture
def other_team(run, learners):
    return services.join_team(learners[2], run, "Herons")


@pytest.fixture
def other_teacher(db):
    teacher = UserFactory(username="otto", role="teacher")
    CohortFactory(teacher=teacher, name="Other class")
    return teacher
