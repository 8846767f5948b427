"""JSON API for LinguaLens (mounted under /api/ by config/api.py)."""

from ninja import Router

router = Router(tags=["lingualens"])
