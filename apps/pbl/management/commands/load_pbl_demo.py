"""Load the two shipped demo projects (idempotent), authored by the demo teacher, and run
each with the demo class (join code DEMO42) when those exist (see load_demo_data)."""

from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Cohort, User
from apps.pbl import schema
from apps.pbl.models import Project, ProjectRun, RunStatus

DATA = Path(__file__).resolve().parents[2] / "data"
DEMO_TEACHER = "teacher"
DEMO_COHORT_CODE = "DEMO42"


class Command(BaseCommand):
    help = "Load the PBL studio demo projects (idempotent)."

    def handle(self, *args, **options) -> None:
        teacher = User.objects.filter(username=DEMO_TEACHER).first()
        if teacher is None:
            self.stdout.write("PBL studio: no demo teacher (run load_demo_data first); nothing loaded")
            return
        cohort = Cohort.objects.filter(join_code=DEMO_COHORT_CODE).first()
        loaded = []
        with transaction.atomic():
            for path in sorted(DATA.glob("*.json")):
                spec = schema.parse_project_json(path.read_bytes())
                project, created = Project.objects.get_or_create(
                    owner=teacher,
                    title=spec["title"],
                    defaults={"driving_question": spec["driving_question"], "spec": spec},
                )
                if cohort is not None and not ProjectRun.objects.filter(project=project, cohort=cohort).exists():
                    ProjectRun.objects.create(
                        project=project, cohort=cohort, status=RunStatus.OPEN, started_at=timezone.now()
                    )
                loaded.append(f"{project.title}{' (new)' if created else ''}")
        where = f" with class {cohort.join_code}" if cohort else ""
        self.stdout.write(f"PBL studio demo projects ready{where}: {', '.join(loaded)}")
