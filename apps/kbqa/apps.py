from django.apps import AppConfig


class KbqaConfig(AppConfig):
    name = "apps.kbqa"
    label = "kbqa"
    verbose_name = "KBQA"
