"""Generation through the full path with the real SmolLM2 model in a real Celery worker:
API -> Celery -> worker -> Redis -> Channels -> WebSocket / SSE."""

import json
import os
import signal
import time

import httpx
import pytest
from websockets.sync.client import connect

from apps.accounts.services import create_api_token
from apps.inference.models import Generation
from apps.jobs.models import Job, JobStatus

pytestmark = [pytest.mark.live, pytest.mark.model, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api(live_stack, researcher):
    _token, raw = create_api_token(researcher, "test")
    return httpx.Client(base_url=live_stack.url, headers={"Authorization": f"Bearer {raw}"}, timeout=120), raw


def wait_for_job(job_id: int, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id).status}")


def start(client: httpx.Client, **params) -> int:
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Tell me about the sea."}],
        "params": {"temperature": 0, "max_tokens": 24, **params},
    }
    response = client.post("/api/generate", json=body)
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def test_streams_tokens_over_websocket_and_saves_the_text(live_stack, api):
    client, token = api
    job_id = start(client)
    ws_url = live_stack.url.replace("http", "ws") + f"/ws/generations/{job_id}/?format=json"
    streamed = ""
    deltas = 0
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        while True:
            message = json.loads(socket.recv(timeout=120))
            if message["type"] in ("snapshot", "delta"):
                streamed += message["text"]
                deltas += message["type"] == "delta"
            elif message["type"] == "reset":
                streamed = ""
            elif message["type"] == "status" and message["status"] in ("succeeded", "failed"):
                break
    assert message["status"] == "succeeded", message
    generation = Generation.objects.get(job_id=job_id)
    assert generation.output.strip()
    assert streamed == generation.output
    assert deltas >= 1
    assert generation.tokens_per_second > 0
    assert generation.time_to_first_token_ms is not None
    polled = client.get(f"/api/generations/{job_id}").json()
    assert polled["output"] == generation.output


def test_cancel_stops_generation_within_a_second(live_stack, api):
    client, _token = api
    job_id = start(client, max_tokens=2000, temperature=0.8, seed=3)
    deadline = time.monotonic() + 120
    while not Generation.objects.get(job_id=job_id).completion_tokens and time.monotonic() < deadline:
        time.sleep(0.1)  # progress is saved every 2 s once tokens flow
    cancelled_at = time.monotonic()
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    job = wait_for_job(job_id, timeout=10)
    generation = Generation.objects.get(job_id=job_id)
    assert job.status == JobStatus.CANCELLED
    assert generation.finish_reason == "cancelled"
    assert generation.output  # what was produced before the stop is kept
    assert job.finished_at is not None
    assert time.monotonic() - cancelled_at < 5  # stop within ~1 s, plus polling slack


def test_worker_killed_mid_generation_is_retried(live_stack, api):
    client, _token = api
    job_id = start(client, max_tokens=200)
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job_id).status != JobStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    for pid in live_stack.worker.pool_children():
        os.kill(pid, signal.SIGKILL)
    job = wait_for_job(job_id, timeout=360)  # the retry regenerates from the start on a shared CPU
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2
    assert Generation.objects.get(job_id=job_id).output


def test_openai_client_against_atrium_v1(live_stack, api):
    from openai import OpenAI

    _client, token = api
    openai = OpenAI(base_url=f"{live_stack.url}/v1", api_key=token)
    assert "smollm2-135m" in [model.id for model in openai.models.list()]
    messages = [{"role": "user", "content": "Say hello."}]
    reply = openai.chat.completions.create(model="smollm2-135m", messages=messages, max_tokens=12, temperature=0)
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0
    stream = openai.chat.completions.create(
        model="smollm2-135m", messages=messages, max_tokens=12, temperature=0, stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert "".join(pieces) == reply.choices[0].message.content  # same seedless greedy request, same text


def test_openai_backend_talks_to_atrium_v1(live_stack, api):
    """The `openai` backend against a real OpenAI-compatible server: Atrium's own /v1 in another process."""
    from apps.inference.backends import GenerationParams, ModelSpec
    from apps.inference.backends.openai_backend import OpenAIBackend

    _client, token = api
    spec = ModelSpec(
        name="remote",
        backend="openai",
        source="",
        context_length=8192,
        languages=("en",),
        chat=True,
        default_params={},
        base_url=f"{live_stack.url}/v1",
        api_key=token,
        remote_model="smollm2-135m",
    )
    pieces = list(
        OpenAIBackend(spec).chat([{"role": "user", "content": "Hi"}], GenerationParams(temperature=0, max_tokens=8))
    )
    assert "".join(pieces).strip()
