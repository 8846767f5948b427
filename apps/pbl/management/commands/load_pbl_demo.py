from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load the PBL studio demo data (idempotent)."

    def handle(self, *args, **options) -> None:
        self.stdout.write("PBL studio: no demo data yet")
