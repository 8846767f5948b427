"""Parsers, questions and imports read their status from their job (apps.jobs.models.JobBacked)
instead of keeping a copy; a parser is ready once it has a `trained_at`."""

from django.db import migrations, models

STOPPED = ("failed", "cancelled")
ACTIVE = ("queued", "running")


def forwards(apps, schema_editor):
    ParserModel = apps.get_model("kbqa", "ParserModel")
    for parser in ParserModel.objects.filter(status="ready").only("created_at"):
        ParserModel.objects.filter(pk=parser.pk).update(trained_at=parser.created_at)


def backwards(apps, schema_editor):
    ParserModel = apps.get_model("kbqa", "ParserModel")
    Question = apps.get_model("kbqa", "Question")
    KBImport = apps.get_model("kbqa", "KBImport")
    ParserModel.objects.filter(trained_at__isnull=False).update(status="ready")
    ParserModel.objects.filter(trained_at__isnull=True, job__status__in=STOPPED).update(status="failed")
    Question.objects.update(status="done")
    Question.objects.filter(job__status__in=ACTIVE).update(status="pending")
    Question.objects.filter(job__status__in=STOPPED).update(status="failed")
    KBImport.objects.filter(models.Q(kb__isnull=False) | models.Q(job__status="succeeded")).update(status="done")
    KBImport.objects.filter(job__status__in=STOPPED).update(status="failed")
    KBImport.objects.exclude(errors=[]).update(status="failed")


class Migration(migrations.Migration):
    dependencies = [("kbqa", "0004_knowledgebase_summary")]

    operations = [
        migrations.AddField(
            model_name="parsermodel",
            name="trained_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="parsermodel", name="status"),
        migrations.RemoveField(model_name="question", name="status"),
        migrations.RemoveField(model_name="kbimport", name="status"),
    ]
