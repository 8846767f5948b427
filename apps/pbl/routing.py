"""WebSocket routes for PBL studio (joined into config/routing.py)."""

from django.urls import path

from apps.pbl.consumers import DashboardConsumer, TeamConsumer

websocket_urlpatterns: list = [
    path("ws/pbl/teams/<int:team_id>/", TeamConsumer.as_asgi()),
    path("ws/pbl/runs/<int:run_id>/dashboard/", DashboardConsumer.as_asgi()),
]
