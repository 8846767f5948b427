import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from apps.inference import live_text, registry
from apps.inference.consumers import GenerationConsumer
from apps.inference.models import Generation
from apps.jobs.consumers import CLOSE_FORBIDDEN
from apps.jobs.models import Job, JobStatus
from apps.jobs.services import run_job


@pytest.fixture
def ghost_model(settings):
    settings.ATRIUM_EXTRA_MODELS = json.dumps(
        [
            {
                "name": "ghost",
                "backend": "transformers",
                "source": "gguf-package:no_such_pkg/x.gguf",
                "context_length": 2048,
            }
        ]
    )
    registry.all_models.cache_clear()
    yield "ghost"
    registry.all_models.cache_clear()


def test_missing_model_files_fail_the_job_with_instructions(researcher, ghost_model):
    """The worker's task body, run in-process: the job fails cleanly instead of crash-looping."""
    from apps.inference.services import request_generation, run_generation

    job = request_generation(researcher, ghost_model, messages=[{"role": "user", "content": "hi"}])
    run_job(job.pk, run_generation)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "prepare_models" in job.error


def test_models_page_shows_unprepared_models(client_for, admin_user, ghost_model):
    page = client_for(admin_user).get("/inference/models/").content.decode()
    assert 'data-model="ghost"' in page
    assert "manage.py prepare_models" in page


async def connect(user, job_id: int, query: str = "") -> tuple[bool, int | None, list]:
    communicator = WebsocketCommunicator(GenerationConsumer.as_asgi(), f"/ws/generations/{job_id}/{query}")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"job_id": job_id}}
    connected, code = await communicator.connect(timeout=10)
    messages = []
    if connected:
        # JSON clients get a snapshot and a status message; browsers get one fragment with both.
        for _ in range(2 if "json" in query else 1):
            messages.append(await communicator.receive_from(timeout=5))
    # As a server would, end every connection, refused ones too: a refused consumer is still
    # waiting on its channel, and leaving that to the closing event loop once stalled CI here.
    await communicator.disconnect()
    return connected, code, messages


@pytest.mark.django_db(transaction=True)
def test_streams_are_private_to_their_owner(researcher, django_user_model):
    job = Job.objects.create(owner=researcher, kind="inference.generate", queue="gpu", status="running")
    Generation.objects.create(job=job, model_name="smollm2-135m", messages=[{"role": "user", "content": "x"}])
    live_text.reset(job.pk)
    live_text.append(job.pk, "partial <b>text</b>")
    other = django_user_model.objects.create_user(username="mallory", password="pw-123456-x", role="researcher")

    @async_to_sync
    async def connect_all():
        # One event loop for all three: channels-redis keeps its connections per loop.
        return (
            await connect(other, job.pk),
            await connect(researcher, job.pk, "?format=json"),
            await connect(researcher, job.pk),
        )

    as_other, as_json, as_html = connect_all()
    assert as_other[0] is False
    assert as_other[1] == CLOSE_FORBIDDEN
    assert as_json[0]
    assert json.loads(as_json[2][0]) == {"type": "snapshot", "text": "partial <b>text</b>"}
    assert "partial &lt;b&gt;text&lt;/b&gt;" in as_html[2][0]  # escaped for the browser


@pytest.mark.django_db(transaction=True)
def test_json_stream_of_a_queued_generation_reports_its_position(researcher):
    """Queued jobs need a database query for their position; it must not run on the event loop."""
    job = Job.objects.create(owner=researcher, kind="inference.generate", queue="gpu-test-queue")
    Generation.objects.create(job=job, model_name="smollm2-135m", messages=[{"role": "user", "content": "x"}])
    live_text.reset(job.pk)

    connected, _code, messages = async_to_sync(connect)(researcher, job.pk, "?format=json")
    assert connected
    status = json.loads(messages[1])
    assert status["status"] == "queued"
    assert status["queue_position"] == 1
