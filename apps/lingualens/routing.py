"""WebSocket routes for LinguaLens (joined into config/routing.py)."""

from django.urls import path

from apps.lingualens.consumers import SteeringConsumer

websocket_urlpatterns: list = [
    path("ws/lingualens/steering/<int:job_id>/", SteeringConsumer.as_asgi()),
]
