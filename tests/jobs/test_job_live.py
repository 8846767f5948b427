"""The demo job through the real stack: daphne, Redis, Postgres and a Celery worker."""

import json
import os
import re
import signal
import time

import pytest
from django.test import Client
from websockets.sync.client import connect

from apps.jobs import services
from apps.jobs.models import Job, JobStatus

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout: float = 30, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_count_job_streams_progress_over_websocket(live_stack, student):
    client = Client()
    client.force_login(student)
    session = client.cookies["sessionid"].value
    job = services.create_job(student, "jobs.count", {"n": 5, "delay": 0.3})
    ws_url = live_stack.url.replace("http", "ws") + f"/ws/jobs/{job.pk}/"
    seen = []
    with connect(ws_url, additional_headers={"Cookie": f"sessionid={session}", "Origin": live_stack.url}) as socket:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = socket.recv(timeout=10)
            seen.append(message)
            if 'data-status="succeeded"' in message:
                break
    # Progress arrives as it happens (which step comes first depends on when the socket joined).
    assert any(re.search(r"Counted [1-4] of 5", message) for message in seen)
    assert 'data-status="succeeded"' in seen[-1]
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"counted": 5}


def test_worker_killed_mid_job_is_retried(live_stack, student):
    job = services.create_job(student, "jobs.count", {"n": 15, "delay": 0.2})
    wait_for(lambda: Job.objects.get(pk=job.pk).progress >= 0.2)
    for pid in live_stack.worker.pool_children():
        os.kill(pid, signal.SIGKILL)
    done = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).is_finished and j, timeout=60)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == 2


def test_api_with_token_from_a_script(live_stack, student):
    import httpx

    from apps.accounts.services import create_api_token

    _token, raw = create_api_token(student, "script")
    headers = {"Authorization": f"Bearer {raw}"}
    job_id = services.create_job(student, "jobs.count", {"n": 2, "delay": 0}).pk
    body = wait_for(
        lambda: (
            (r := httpx.get(f"{live_stack.url}/api/jobs/{job_id}", headers=headers).json())["status"] == "succeeded"
            and r
        )
    )
    assert body["result"] == {"counted": 2}
    assert json.dumps(body)  # serialisable as the API promises


def test_idle_socket_stays_open_past_redis_timeouts(live_stack, student):
    """A job page waiting in the queue gets no messages for a while; its socket must survive."""
    client = Client()
    client.force_login(student)
    session = client.cookies["sessionid"].value
    job = Job.objects.create(owner=student, kind="jobs.count", queue="nowhere", params={"n": 1, "delay": 0})
    ws_url = live_stack.url.replace("http", "ws") + f"/ws/jobs/{job.pk}/"
    with connect(ws_url, additional_headers={"Cookie": f"sessionid={session}", "Origin": live_stack.url}) as socket:
        assert 'data-status="queued"' in socket.recv(timeout=10)
        time.sleep(7)  # longer than redis-py's default 5 s read timeout
        services.cancel_job(job)
        assert 'data-status="cancelled"' in socket.recv(timeout=10)
