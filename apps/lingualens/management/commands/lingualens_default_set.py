from django.core.management.base import BaseCommand

from apps.lingualens import default_set


class Command(BaseCommand):
    help = (
        "Queue the default SAE set's batch job (corpus, activations, SAEs, scores, explanations) unless it "
        "is done, queued or running: idempotent, and a set stopped midway resumes where it was."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--stale-after",
            type=float,
            default=None,
            help="seconds without a heartbeat after which a 'running' job counts as stopped "
            "(default JOB_STALE_AFTER_SECONDS; make up passes 0 when its own databases start with it)",
        )

    def handle(self, *args, stale_after, **options) -> None:
        job, queued = default_set.ensure_default_set(stale_after)
        state = default_set.status()
        if state is None:
            self.stdout.write(f"LinguaLens default SAE set: ready (job {job.pk})")
            return
        minutes = round(state["seconds_left"] / 60)
        verb = "queued now" if queued else f"already {job.status}, nothing new queued"
        self.stdout.write(
            f"LinguaLens default SAE set: job {job.pk} {verb} on the batch queue; layers {state['layers']}, "
            f"width {state['width']}; about {minutes} min of work left"
        )
