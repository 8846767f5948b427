"""The Celery app. Each app's tasks live in apps/<app>/tasks.py and are discovered; each task's
queue is registered with its job kind in the app's AppConfig.ready() (see apps.jobs.kinds)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("atrium")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
