from django.urls import path

from apps.kbqa import views

app_name = "kbqa"
urlpatterns = [
    path("", views.index, name="index"),
    path("kbs/", views.kb_list, name="kb_list"),
    path("kbs/<slug:name>/", views.kb_detail, name="kb_detail"),
]
