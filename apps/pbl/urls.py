from django.urls import path

from apps.core.views import area_placeholder

app_name = "pbl"
urlpatterns = [
    path("", area_placeholder, {"area": "pbl"}, name="index"),
]
