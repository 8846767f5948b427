from django.urls import path

from apps.kbqa import views

app_name = "kbqa"
urlpatterns = [
    path("", views.index, name="index"),
    path("questions/<int:question_id>/", views.question_detail, name="question"),
    path("questions/<int:question_id>/rerun/", views.question_rerun, name="rerun"),
    path("parsers/", views.parsers, name="parsers"),
    path("kbs/", views.kb_list, name="kb_list"),
    path("kbs/<slug:name>/", views.kb_detail, name="kb_detail"),
]
