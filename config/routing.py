from django.urls import path

from apps.inference.consumers import GenerationConsumer
from apps.jobs.consumers import JobConsumer

websocket_urlpatterns = [
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/generations/<int:job_id>/", GenerationConsumer.as_asgi()),
]
