from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "apps.inference"
    label = "inference"

    def ready(self) -> None:
        from apps.inference import services  # noqa: F401  (registers the "generate" job kind)
