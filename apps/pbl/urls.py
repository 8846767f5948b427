from django.urls import path

from apps.pbl import views

app_name = "pbl"
urlpatterns = [
    path("", views.index, name="index"),
    path("projects/import/", views.project_import, name="project_import"),
    path("projects/new/", views.project_new, name="project_new"),
    path("projects/editor-row/", views.editor_row, name="editor_row"),
    path("projects/<int:project_id>/", views.project_edit, name="project_edit"),
    path("projects/<int:project_id>/export/", views.project_export, name="project_export"),
    path("runs/new/", views.run_create, name="run_create"),
    path("runs/<int:run_id>/manage/", views.run_manage, name="run_manage"),
    path("runs/<int:run_id>/dashboard/", views.run_dashboard, name="run_dashboard"),
    path("runs/<int:run_id>/events.<str:fmt>", views.run_events, name="run_events"),
    path("runs/<int:run_id>/", views.run_student, name="run_student"),
    path("runs/<int:run_id>/exam/<str:kind>/", views.exam, name="exam"),
    path("submissions/<int:submission_id>/override/", views.submission_override, name="submission_override"),
    path("teams/<int:team_id>/", views.workspace, name="workspace"),
    path("teams/<int:team_id>/messages/", views.post_message, name="post_message"),
    path("teams/<int:team_id>/tasks/", views.task_action, name="task_action"),
    path("teams/<int:team_id>/submit/", views.submit_milestone, name="submit_milestone"),
    path("teams/<int:team_id>/summary/", views.summary, name="summary"),
    path("messages/<int:message_id>/", views.message_fragment, name="message"),
    path("messages/<int:message_id>/action/", views.message_action, name="message_action"),
]
