from django.apps import AppConfig


class PblConfig(AppConfig):
    name = "apps.pbl"
    label = "pbl"
    verbose_name = "PBL studio"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from apps.jobs.kinds import JobKind, register_job_kinds, register_tasks

        register_job_kinds(
            # A collaborator agent answers in the chat; the milestone judge reads a submission.
            JobKind("pbl.agent_reply", "interactive", label=_("Agent reply")),
            JobKind("pbl.judge", "interactive", label=_("Milestone judgement")),
        )
        # The orchestrator: its loop (Celery beat, settings.CELERY_BEAT_SCHEDULE) and its
        # per-learner trigger; no Job rows, nobody waits on them.
        register_tasks("cpu", "pbl.orchestrate", "pbl.orchestrate_learner")
