from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "apps.inference"
    label = "inference"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from apps.jobs.kinds import JobKind, register_job_kinds

        # Playground and API generations: someone is reading the tokens as they come.
        register_job_kinds(JobKind("inference.generate", "interactive", label=_("Text generation")))
