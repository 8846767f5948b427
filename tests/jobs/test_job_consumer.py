"""The job WebSocket, through the real Redis channel layer."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.jobs.consumers import CLOSE_FORBIDDEN, JobConsumer
from apps.jobs.events import send_to_group
from apps.jobs.models import Job, job_group

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
