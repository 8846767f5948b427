from django.urls import path

from apps.tables import views

app_name = "tables"
urlpatterns = [
    path("", views.workbook_list, name="list"),
    path("<int:workbook_id>/", views.workbook_detail, name="workbook"),
    path("<int:workbook_id>/ask/", views.ask, name="ask"),
    path("messages/<int:message_id>/", views.message_detail, name="message"),
    path("messages/<int:message_id>/run/", views.message_run, name="message_run"),
    path("messages/<int:message_id>/chart.svg", views.message_chart, {"image_format": "svg"}, name="chart_svg"),
    path("messages/<int:message_id>/chart.png", views.message_chart, {"image_format": "png"}, name="chart_png"),
    path("sheets/<int:sheet_id>/undo/", views.undo_redo, {"action": "undo"}, name="undo"),
    path("sheets/<int:sheet_id>/redo/", views.undo_redo, {"action": "redo"}, name="redo"),
    path("sheets/<int:sheet_id>/diff/", views.version_diff, name="diff"),
    path("sheets/<int:sheet_id>/merge/", views.merge, name="merge"),
    path("versions/<int:version_id>/download.csv", views.version_download, {"file_format": "csv"}, name="csv"),
    path("versions/<int:version_id>/download.xlsx", views.version_download, {"file_format": "xlsx"}, name="xlsx"),
]
