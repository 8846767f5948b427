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
