"""Convert the packaged GGUF models once into var/models/<name>/ so workers load fast."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.inference.backends import ModelFilesMissing, ensure_converted
from apps.inference.registry import all_models, get_model


class Command(BaseCommand):
    help = "Convert packaged models for the transformers backend (skips those already converted)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", action="append", help="only this model (repeatable)")

    def handle(self, *args, model=None, **options) -> None:
        specs = [get_model(name) for name in model] if model else list(all_models().values())
        failed = []
        for spec in specs:
            if spec.backend != "transformers":
                continue
            started = time.monotonic()
            try:
                path = ensure_converted(spec, settings.MODELS_DIR)
            except ModelFilesMissing as exc:
                # Optional models (e.g. LinguaLens' Gemma) may not be installed; say so, go on.
                self.stdout.write(self.style.WARNING(f"{spec.name}: skipped ({exc})"))
                if model:
                    failed.append(spec.name)
                continue
            self.stdout.write(f"{spec.name}: ready in {time.monotonic() - started:.1f}s at {path}")
        if failed:
            raise CommandError(f"could not prepare: {', '.join(failed)}")
