from django.apps import AppConfig


class TablesConfig(AppConfig):
    name = "apps.tables"
    label = "tables"

    def ready(self) -> None:
        from apps.tables import assistant  # noqa: F401  (registers the table job kinds)
