"""The job WebSocket, through the real Redis channel layer."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.jobs.consumers import CLOSE_FORBIDDEN, JobConsumer
from apps.jobs.events import send_to_group
from apps.jobs.models import Job, job_group
from apps.jobs.progress_text import message
from apps.jobs.services import RETRYING

pytestmark = pytest.mark.django_db(transaction=True)


def communicator_for(user, job_id: int) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(JobConsumer.as_asgi(), f"/ws/jobs/{job_id}/")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"job_id": job_id}}
    return communicator


@async_to_sync
async def connect_and_collect(user, job_id: int, publish: bool = False):
    communicator = communicator_for(user, job_id)
    connected, code = await communicator.connect(timeout=10)
    messages = []
    if connected:
        messages.append(await communicator.receive_from(timeout=5))
        if publish:
            from channels.db import database_sync_to_async

            await database_sync_to_async(Job.objects.filter(pk=job_id).update)(progress=0.5, status="running")
            from channels.layers import get_channel_layer

            await get_channel_layer().group_send(job_group(job_id), {"type": "job.update", "job_id": job_id})
            messages.append(await communicator.receive_from(timeout=5))
    # As a server would, end every connection, refused ones too: a refused consumer is still
    # waiting on its channel, and leaving that to the closing event loop once stalled CI here.
    await communicator.disconnect()
    return connected, code, messages


def test_owner_gets_current_state_then_updates(student):
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")
    connected, _code, messages = connect_and_collect(student, job.pk, publish=True)
    assert connected
    assert f'id="job-{job.pk}-status"' in messages[0]
    assert 'hx-swap-oob="true"' in messages[0]
    assert 'data-status="running"' in messages[1]
    assert "50%" in messages[1]


def test_anonymous_socket_is_closed(student):
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")
    connected, code, _messages = connect_and_collect(AnonymousUser(), job.pk)
    assert not connected
    assert code == CLOSE_FORBIDDEN


def test_socket_for_another_users_job_is_closed(student, teacher):
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")
    connected, code, _messages = connect_and_collect(teacher, job.pk)
    assert not connected
    assert code == CLOSE_FORBIDDEN


def test_publishing_from_sync_code_many_times_keeps_working(student):
    # Regression guard for channels-redis' "Event loop is closed" in long-lived workers.
    for _ in range(50):
        send_to_group(job_group(999999), {"type": "job.update", "job_id": 999999})


@async_to_sync
async def status_fragments(user, job_id: int, headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The first fragment and the one after an update, through the whole ASGI application."""
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer

    from config.asgi import application
    from tests.security.conftest import CLIENT_ADDRESS, session_cookie

    cookie = await database_sync_to_async(session_cookie)(user)
    headers = [(b"host", b"127.0.0.1:8120"), (b"origin", b"http://127.0.0.1:8120"), *headers]
    headers = [
        (b"cookie", f"{cookie}; {value.decode()}".encode()) if key == b"cookie" else (key, value)
        for key, value in headers
    ]
    if not any(key == b"cookie" for key, _value in headers):
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, f"/ws/jobs/{job_id}/", headers)
    communicator.scope["client"] = (CLIENT_ADDRESS, 50000)
    connected, _code = await communicator.connect(timeout=10)
    assert connected
    messages = [await communicator.receive_from(timeout=5)]
    retrying = message(RETRYING, attempt=2)
    await database_sync_to_async(Job.objects.filter(pk=job_id).update)(status="running", progress_message=retrying)
    await get_channel_layer().group_send(job_group(job_id), {"type": "job.update", "job_id": job_id})
    messages.append(await communicator.receive_from(timeout=5))
    await communicator.disconnect()
    return messages


def test_status_fragments_are_in_the_readers_language(student):
    # Channels runs no LocaleMiddleware: the fragments came in English on Chinese pages.
    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")
    first, update = status_fragments(student, job.pk, [(b"cookie", b"django_language=zh-hans")])
    assert "排队" in first  # "Queued"
    assert "运行中" in update
    assert "重试（第 2 次）" in update
    assert "Retrying" not in update
    assert "Running" not in update
    Job.objects.filter(pk=job.pk).update(status="queued")
    _first, update = status_fragments(student, job.pk, [(b"accept-language", b"zh-CN,zh;q=0.9")])
    assert "重试（第 2 次）" in update
    _first, update = status_fragments(student, job.pk, [(b"accept-language", b"en-GB")])
    assert "Retrying (attempt 2)" in update
    assert "Running" in update
