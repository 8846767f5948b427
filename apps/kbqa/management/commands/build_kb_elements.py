from django.core.management.base import BaseCommand

from apps.kbqa.builders import elements, store


class Command(BaseCommand):
    help = "Build (or rebuild) the 'elements' KB from mendeleev's database. Idempotent."

    def handle(self, *args, **options):
        data, source = elements.build()
        description = (
            "Chemical elements, their isotopes and decay modes, periodic-table groups, periods and blocks, "
            "discoverers, places of discovery and producer countries, "
            f"built by `manage.py build_kb_elements` from the PyPI package {source}."
        )
        kb, path = store(elements.NAME, elements.TITLE, description, source, data)
        self.stdout.write(f"{kb.name}: {kb.stats}" + (f"; JSON at {path}" if path else "; too large to ship as JSON"))
