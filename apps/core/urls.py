from django.urls import path

from apps.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("pbl/", views.area_placeholder, {"area": "pbl"}, name="area_pbl"),
    path("lingualens/", views.area_placeholder, {"area": "lingualens"}, name="area_lingualens"),
    path("healthz", views.healthz, name="healthz"),
]
