"""Celery tasks for PBL studio: thin wrappers that call apps.pbl services."""
