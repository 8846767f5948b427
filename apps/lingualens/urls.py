from django.urls import path

from apps.core.views import area_placeholder

app_name = "lingualens"
urlpatterns = [
    path("", area_placeholder, {"area": "lingualens"}, name="index"),
]
