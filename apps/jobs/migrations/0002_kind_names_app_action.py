"""Job kinds are named "<app label>.<action>", like their Celery tasks (apps.jobs.kinds)."""

from django.db import migrations

RENAMED = {
    "count": "jobs.count",
    "generate": "inference.generate",
    "table_ask": "tables.ask",
    "table_run": "tables.run",
    "pbl_agent_reply": "pbl.agent_reply",
    "pbl_judge": "pbl.judge",
    "kbqa_train": "kbqa.train",
    "kbqa_evaluate": "kbqa.evaluate",
    "kbqa_ask": "kbqa.ask",
    "kbqa_import": "kbqa.import",
}


def rename(apps, mapping: dict[str, str]) -> None:
    Job = apps.get_model("jobs", "Job")
    for old, new in mapping.items():
        Job.objects.filter(kind=old).update(kind=new)


def forwards(apps, schema_editor):
    rename(apps, RENAMED)


def backwards(apps, schema_editor):
    rename(apps, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
