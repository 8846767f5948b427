from django.apps import AppConfig


class PblConfig(AppConfig):
    name = "apps.pbl"
    label = "pbl"
    verbose_name = "PBL studio"
