from django.urls import path

from apps.inference import views

urlpatterns = [
    path("playground/", views.playground, name="playground"),
    path("generations/<int:job_id>/", views.generation_detail, name="generation_detail"),
    path("models/", views.model_list, name="model_list"),
]
