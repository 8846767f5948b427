"""WebSocket routes for PBL studio (joined into config/routing.py)."""

websocket_urlpatterns: list = []
