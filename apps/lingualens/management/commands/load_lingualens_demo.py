from django.core.management.base import BaseCommand

from apps.lingualens import services


class Command(BaseCommand):
    help = "Load the LinguaLens catalogue and default corpus (idempotent, no model work)."

    def handle(self, *args, **options) -> None:
        report = services.load_default_catalogue()
        corpus = services.ensure_default_corpus()
        self.stdout.write(f"LinguaLens: catalogue: {report.summary}; default corpus: {len(corpus.texts)} texts")
