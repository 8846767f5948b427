from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load the LinguaLens demo data (idempotent)."

    def handle(self, *args, **options) -> None:
        self.stdout.write("LinguaLens: no demo data yet")
