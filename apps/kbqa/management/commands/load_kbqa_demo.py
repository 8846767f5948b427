from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.kbqa import services
from apps.kbqa.models import KnowledgeBase, ParserModel

DEMO_SOURCE_KB = "geo"


class Command(BaseCommand):
    help = (
        "Build the shipped KBQA knowledge bases (geo, elements) and, when no sketch parser exists yet, "
        "enqueue training one on geo (the cpu worker runs it). Idempotent; run by the demo set-up."
    )

    def handle(self, *args, **options):
        call_command("build_kb_geo", stdout=self.stdout)
        call_command("build_kb_elements", stdout=self.stdout)
        owner = get_user_model().objects.filter(username="admin").first()
        source = KnowledgeBase.objects.filter(name=DEMO_SOURCE_KB).first()
        if owner and source and not ParserModel.objects.not_failed().exists():
            parser = services.request_training(owner, source)
            self.stdout.write(f"Queued training of sketch parser #{parser.pk} on {source.name}.")
