from django.apps import AppConfig


class TablesConfig(AppConfig):
    name = "apps.tables"
    label = "tables"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from apps.jobs.kinds import JobKind, register_job_kinds

        register_job_kinds(
            # A question: the model writes code, the sandbox runs it.
            JobKind("tables.ask", "interactive", label=_("Table question")),
            # Code the user edited, run in the sandbox alone.
            JobKind("tables.run", "cpu", label=_("Edited code run")),
        )
