"""Demo users (one per role) and a demo class. Idempotent: a second run changes nothing.

The password is for local use only and printed in the README."""

from django.core.management.base import BaseCommand

from apps.accounts.models import Cohort, Role, User

DEMO_PASSWORD = "atrium-demo"  # noqa: S105  (documented, local use only)
DEMO_USERS = [
    ("student", Role.STUDENT),
    ("teacher", Role.TEACHER),
    ("researcher", Role.RESEARCHER),
    ("admin", Role.ADMIN),
]
DEMO_COHORT_CODE = "DEMO42"


class Command(BaseCommand):
    help = "Create one demo user per role and one demo class (local use only)."

    def handle(self, *args, **options) -> None:
        users = {}
        for username, role in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"role": role})
            if created:
                user.set_password(DEMO_PASSWORD)
                user.is_staff = user.is_superuser = role == Role.ADMIN
                user.save()
            users[username] = user
        cohort, _ = Cohort.objects.get_or_create(
            join_code=DEMO_COHORT_CODE, defaults={"name": "Demo class", "teacher": users["teacher"]}
        )
        cohort.students.add(users["student"])
        names = ", ".join(users)
        self.stdout.write(f"Demo data ready: users {names} (password {DEMO_PASSWORD!r}), class {cohort.join_code}")
