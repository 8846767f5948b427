from django.apps import AppConfig


class LingualensConfig(AppConfig):
    name = "apps.lingualens"
    label = "lingualens"
    verbose_name = "LinguaLens"
