from django.conf import settings
from django.db import models

from apps.jobs.models import Job


class Workbook(models.Model):
    KIND_CHOICES = [("spreadsheet", "Spreadsheet"), ("document", "Document table")]

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workbooks")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=KIND_CHOICES, default="spreadsheet")
    context = models.TextField(blank=True)  # the paragraph around a pasted document table
    source_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Sheet(models.Model):
    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="sheets")
    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)
    context = models.TextField(blank=True)  # the text around a table read from a DOCX or PDF
    # Undo and redo move this pointer; versions themselves never change.
    current_version = models.ForeignKey("SheetVersion", null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.workbook.name} / {self.name}"


class SheetVersion(models.Model):
    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    description = models.CharField(max_length=300)
    row_count = models.PositiveIntegerField()
    columns = models.JSONField()  # [{"name", "dtype", "missing"}]
    data_path = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["sheet", "number"], name="unique_version_number")]

    def __str__(self) -> str:
        return f"{self.sheet} v{self.number}"


class TableMessage(models.Model):
    """One turn of a workbook's chat. Assistant turns carry the mode, the code, the
    run's result and the version it made, so the chat survives a reload."""

    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="messages")
    sheet = models.ForeignKey(Sheet, null=True, on_delete=models.SET_NULL, related_name="+")
    role = models.CharField(max_length=10)  # user | assistant
    text = models.TextField(blank=True)
    mode = models.CharField(max_length=10, blank=True)  # text | code | both | chart
    code = models.TextField(blank=True)
    based_on = models.ForeignKey(SheetVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="+")
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    made_version = models.ForeignKey(SheetVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"
