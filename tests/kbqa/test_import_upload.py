"""Importing a KB from the browser: the upload is checked at once, then a worker job validates,
stores and indexes it, keeping every problem (with its path) on the import row."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from apps.kbqa import services
from apps.kbqa.models import KBImport, KnowledgeBase


def upload(client, name: str, content: bytes, file_name: str = "kb.json"):
    return client.post(
        "/kbqa/kbs/", {"name": name, "title": "Mine", "file": SimpleUploadedFile(file_name, content)}, follow=True
    )


def run_import_job(item: KBImport) -> KBImport:
    """What the cpu worker does for a kbqa_import job."""
    services.run_import(Job.objects.get(pk=item.job_id))
    item.refresh_from_db()
    return item


def test_upload_imports_in_a_job(client_for, researcher, tiny_data):
    client = client_for(researcher)
    page = upload(client, "mine", json.dumps(tiny_data).encode())
    assert b"Importing" in page.content
    item = KBImport.objects.get()
    assert item.job.kind == "kbqa.import"
    assert not KnowledgeBase.objects.filter(name="mine").exists()  # not before the worker ran
    item = run_import_job(item)
    assert item.status == KBImport.Status.DONE
    assert item.raw == ""  # the upload is not kept twice
    assert KnowledgeBase.objects.get(name="mine").stats["entities"] == len(tiny_data["entities"])


def test_problems_are_listed_with_paths_and_nothing_is_imported(client_for, researcher, tiny_data):
    client = client_for(researcher)
    broken = json.loads(json.dumps(tiny_data))
    first = next(iter(broken["entities"]))
    broken["entities"][first]["relations"].append(
        {"relation": "r", "direction": "forward", "object": "NOPE", "qualifiers": {}}
    )
    upload(client, "broken", json.dumps(broken).encode())
    item = run_import_job(KBImport.objects.get())
    assert item.status == KBImport.Status.FAILED
    assert any(f"entities.{first}.relations" in error and "NOPE" in error for error in item.errors)
    assert not KnowledgeBase.objects.filter(name="broken").exists()
    page = client.get("/kbqa/kbs/")
    assert b"NOPE" in page.content

    upload(client, "garbled", b'{"concepts": {}, "entities": {')
    garbled = run_import_job(KBImport.objects.get(name="garbled"))
    assert garbled.errors[0].startswith("not valid JSON")
    assert "line 1" in garbled.errors[0]


def test_bad_uploads_are_refused_at_once(client_for, researcher, tiny_kb, settings):
    client = client_for(researcher)
    assert b"already exists" in upload(client, "tiny", b"{}").content
    assert b"must be a slug" in upload(client, "Not A Slug", b"{}").content
    assert b"not UTF-8" in upload(client, "latin", '{"é": 1}'.encode("latin-1")).content
    assert b".json file" in upload(client, "csv", b"a,b", file_name="kb.csv").content
    settings.KBQA_MAX_UPLOAD_BYTES = 1024
    assert b"the limit is" in upload(client, "big", b"x" * 5000).content
    assert not KBImport.objects.exists()
