from django.apps import AppConfig


class TablesConfig(AppConfig):
    name = "apps.tables"
    label = "tables"

    def ready(self) -> None:
        from apps.jobs.kinds import JobKind, register_job_kinds

        register_job_kinds(
            JobKind("tables.ask", "interactive"),  # a question: the model writes code, the sandbox runs it
            JobKind("tables.run", "cpu"),  # code the user edited, run in the sandbox alone
        )
