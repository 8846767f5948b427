"""The Celery app. Tasks live in workers/ (by queue) and call app services."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("atrium", include=["workers.cpu", "workers.gpu", "workers.pbl", "workers.lingualens"])
app.config_from_object("django.conf:settings", namespace="CELERY")
