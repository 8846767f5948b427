from django.apps import AppConfig


class LingualensConfig(AppConfig):
    name = "apps.lingualens"
    label = "lingualens"
    verbose_name = "LinguaLens"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from apps.jobs.kinds import JobKind, register_job_kinds
        from apps.lingualens import progress  # noqa: F401  (registers the messages pages translate)
        from apps.lingualens.default_set import LINK_SECONDS

        # Training, scoring and explaining run for minutes on the batch queue; search and
        # steering are answers a researcher waits for, on the interactive queue, so they never
        # wait behind training.
        register_job_kinds(
            JobKind("lingualens.train", "batch", label=_("SAE training")),
            JobKind("lingualens.score", "batch", label=_("SAE scoring against the catalogue")),
            JobKind("lingualens.explain", "batch", label=_("Latent explanations")),
            # The first-start chain (default_set.py): hours of work, in links of LINK_SECONDS.
            JobKind("lingualens.default_set", "batch", runs_at_most=LINK_SECONDS, label=_("Default SAE set")),
            JobKind("lingualens.search", "interactive", label=_("Sentence search")),
            JobKind("lingualens.steer", "interactive", label=_("Steering")),
        )
