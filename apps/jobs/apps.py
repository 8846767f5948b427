from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from apps.jobs.kinds import JobKind, register_job_kinds, register_tasks

        # The demo job: counts with progress; tests drive real workers with it. Not offered in the UI.
        register_job_kinds(
            JobKind("jobs.count", "cpu", "apps.jobs.services.clean_count_params", label=_("Demo: count to N"))
        )
        register_tasks("cpu", "jobs.sweep_stale")
