"""JSON API for PBL studio (mounted under /api/ by config/api.py)."""

from ninja import Router

router = Router(tags=["pbl"])
