"""The production server (`python -m config.web`): several uvicorn processes on one socket,
pages and the JSON API from each, and WebSockets that get updates sent from another process
(the Channels layer is Redis)."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from django.test import Client
from websockets.sync.client import connect

from apps.jobs.models import Job
from apps.jobs.services import publish_job
from tests.live import BASE_DIR, free_port, process_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web_server(tmp_path):
    port = free_port()
    log = (tmp_path / "web.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "config.web"],
        cwd=BASE_DIR,
        env=process_env(ATRIUM_PORT=str(port), WEB_PROCESSES="2", DEBUG="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        process.kill()
        raise AssertionError((tmp_path / "web.log").read_text())
    yield url, process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:  # a busy machine: do not leave processes behind
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()


def test_several_processes_serve_pages_api_and_websockets(web_server, student):
    url, process = web_server
    # Two serving processes (uvicorn's supervisor starts them; the tracker is not one).
    workers = [p for p in psutil.Process(process.pid).children() if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    assert httpx.get(f"{url}/").status_code == 200
    assert httpx.get(f"{url}/api/nothing").json()["detail"].startswith("No endpoint")

    client = Client()
    client.force_login(student)
    session = client.cookies["sessionid"].value
    page = httpx.get(f"{url}/jobs/", headers={"Cookie": f"sessionid={session}"})
    assert page.status_code == 200
    assert "Jobs" in page.text

    job = Job.objects.create(owner=student, kind="jobs.count", queue="nowhere", params={"n": 3})
    with contextlib.ExitStack() as stack:
        # Several sockets: the kernel hands connections to either process.
        sockets = [
            stack.enter_context(
                connect(
                    f"{url.replace('http', 'ws')}/ws/jobs/{job.pk}/",
                    additional_headers={"Cookie": f"sessionid={session}", "Origin": url},
                )
            )
            for _ in range(4)
        ]
        Job.objects.filter(pk=job.pk).update(progress=0.5, progress_message="Half way there")
        publish_job(job)  # from this process, through Redis, to every process holding a socket
        for socket in sockets:
            deadline = time.monotonic() + 20
            while "Half way there" not in socket.recv(timeout=max(0.1, deadline - time.monotonic())):
                pass
