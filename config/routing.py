from django.urls import path

from apps.inference.consumers import GenerationConsumer
from apps.jobs.consumers import JobConsumer
from apps.lingualens.routing import websocket_urlpatterns as lingualens_websocket_urlpatterns
from apps.pbl.routing import websocket_urlpatterns as pbl_websocket_urlpatterns

websocket_urlpatterns = [
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/generations/<int:job_id>/", GenerationConsumer.as_asgi()),
    *pbl_websocket_urlpatterns,
    *lingualens_websocket_urlpatterns,
]
