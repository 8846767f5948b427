from django.urls import path

from apps.inference import openai_views

urlpatterns = [
    path("models", openai_views.list_models, name="v1_models"),
    path("chat/completions", openai_views.chat_completions, name="v1_chat_completions"),
    path("completions", openai_views.completions, name="v1_completions"),
]
