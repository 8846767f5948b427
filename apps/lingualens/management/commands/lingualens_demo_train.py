import time

from django.core.management.base import BaseCommand

from apps.accounts.models import User
from apps.jobs.models import Job, JobStatus
from apps.lingualens import pipeline, services


class Command(BaseCommand):
    help = (
        "Train and score demo SAEs on the default corpus in this process (no worker needed): "
        "what a researcher would start from the UI, for a fresh install or a quick check."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--layers", type=int, nargs="+", default=[6])
        parser.add_argument("--width", type=int, default=1024)
        parser.add_argument("--k", type=int, default=32)
        parser.add_argument("--tokens", type=int, default=300_000)
        parser.add_argument("--owner", default="researcher")

    def handle(self, *args, layers, width, k, tokens, owner, **options) -> None:
        services.load_default_catalogue()
        corpus = services.ensure_default_corpus()
        user = User.objects.filter(username=owner).first()
        backend = pipeline.lens_backend(services.DEFAULT_MODEL)
        for layer in layers:
            started = time.monotonic()
            sae = services.start_training(user, corpus, layer, width=width, k=k, training_tokens=tokens)
            job = Job.objects.get(pk=sae.job_id)
            pipeline.train_job(job, backend=backend)  # the queued copy of this job finds the SAE done and stops
            Job.objects.filter(pk=job.pk).update(
                status=JobStatus.SUCCEEDED, progress=1.0, progress_message="trained in-process"
            )
            sae.refresh_from_db()
            self.stdout.write(f"layer {layer}: {sae.slug} {sae.metrics} ({time.monotonic() - started:.0f}s)")
            score_job = services.start_scoring(user, sae)
            pipeline.score_job(score_job, backend=backend)
            Job.objects.filter(pk=score_job.pk).update(status=JobStatus.SUCCEEDED, progress=1.0)
            self.stdout.write(f"layer {layer}: scored ({time.monotonic() - started:.0f}s)")
