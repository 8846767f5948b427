"""The steering WebSocket through the real Redis channel layer: the owner gets the saved text,
then each side's deltas as escaped out-of-band fragments; others are refused."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from apps.jobs.consumers import CLOSE_FORBIDDEN
from apps.jobs.models import Job, job_group
from apps.lingualens import services
from apps.lingualens.consumers import SteeringConsumer
from apps.lingualens.models import SAE, ActivationRun, SteeringRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def steering_run(researcher):
    corpus = services.create_corpus(researcher, "c", "test", ["a"])
    run = ActivationRun.objects.create(owner=researcher, corpus=corpus, layers=[3])
    sae = SAE.objects.create(owner=researcher, run=run, slug="sock", layer=3, width=16, k=4)
    job = Job.objects.create(owner=researcher, kind=services.STEER_KIND, queue="gpu", status="running")
    return SteeringRun.objects.create(
        owner=researcher,
        job=job,
        sae=sae,
        prompt="Hi",
        output_plain="so far",
        interventions=[{"index": 1, "strength": 10, "mode": "add"}],
    )


@async_to_sync
async def connect(user, job_id: int, deltas: list[dict] = ()):
    communicator = WebsocketCommunicator(SteeringConsumer.as_asgi(), f"/ws/lingualens/steering/{job_id}/")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"job_id": job_id}}
    connected, code = await communicator.connect(timeout=10)
    messages = []
    if connected:
        messages.append(await communicator.receive_from(timeout=5))
        for delta in deltas:
            await get_channel_layer().group_send(job_group(job_id), delta)
            messages.append(await communicator.receive_from(timeout=5))
    # As a server would, end every connection, refused ones too: a refused consumer is still
    # waiting on its channel, and leaving that to the closing event loop once stalled CI here.
    await communicator.disconnect()
    return connected, code, messages


def test_owner_gets_snapshot_then_deltas(researcher, steering_run):
    job_id = steering_run.job_id
    connected, _code, messages = connect(
        researcher,
        job_id,
        [
            {"type": "steer.delta", "side": "steered", "text": "<b>x</b>"},
            {"type": "steer.delta", "side": "plain", "text": "", "reset": True},
        ],
    )
    assert connected
    assert f'<div id="steer-{job_id}-plain" hx-swap-oob="innerHTML"><span>so far</span>' in messages[0]
    assert f'id="job-{job_id}-status"' in messages[0]
    assert (
        messages[1]
        == f'<div id="steer-{job_id}-steered" hx-swap-oob="beforeend"><span>&lt;b&gt;x&lt;/b&gt;</span></div>'
    )
    assert messages[2] == f'<div id="steer-{job_id}-plain" hx-swap-oob="innerHTML"><span></span></div>'


def test_others_and_students_are_refused(steering_run):
    for user in (UserFactory(username="r2", role="researcher"), UserFactory(username="s2", role="student")):
        connected, code, _messages = connect(user, steering_run.job_id)
        assert not connected
        assert code == CLOSE_FORBIDDEN
