"""Celery tasks for LinguaLens: thin wrappers that call apps.lingualens services."""
