from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Build the shipped KBQA knowledge bases (geo, elements). Idempotent; run by the demo set-up."

    def handle(self, *args, **options):
        call_command("build_kb_geo", stdout=self.stdout)
        call_command("build_kb_elements", stdout=self.stdout)
