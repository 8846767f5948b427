from django.apps import AppConfig


class KbqaConfig(AppConfig):
    name = "apps.kbqa"
    label = "kbqa"
    verbose_name = "KBQA"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from apps.jobs.kinds import JobKind, register_job_kinds

        register_job_kinds(
            # Minutes of generating pairs and fitting: the batch queue, never ahead of a question.
            JobKind("kbqa.train", "batch", "apps.kbqa.services.clean_train_params", label=_("KBQA parser training")),
            JobKind(
                "kbqa.evaluate", "batch", "apps.kbqa.services.clean_evaluate_params", label=_("KBQA parser evaluation")
            ),
            # A parse and a KoPL run need no model server: the cpu workers, which keep the KBs indexed.
            JobKind("kbqa.ask", "cpu", label=_("KBQA question")),
            JobKind("kbqa.import", "cpu", label=_("Knowledge base import")),
            # The assistant model's second opinion, after the parser's answer is shown: someone is
            # watching the page, and the work is mostly waiting on the model server, like the other
            # model calls a user waits for. Not cpu, where it would hold up the next parse.
            JobKind("kbqa.draft", "interactive", label=_("KBQA program drafted by the assistant")),
        )
