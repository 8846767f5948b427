"""WebSocket routes for LinguaLens (joined into config/routing.py)."""

websocket_urlpatterns: list = []
