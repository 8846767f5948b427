"""The real llama.cpp server (apps.inference.serve) serving the real assistant model, for tests.

One server per test session (tests/conftest.py `assistant_server`); live stacks started after
it reach it through LLAMA_SERVER_HOST/PORT in their environment. ATRIUM_TEST_LLAMA_URL reuses a
server that is already running (handy while developing; CI always starts its own)."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent


@dataclass
class LlamaServer:
    url: str  # the OpenAI base URL, ending in /v1
    process: subprocess.Popen | None  # None when reusing a running server
    log_path: Path | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    def env(self) -> dict[str, str]:
        """What a process needs in its environment to reach this server as the assistant."""
        return {"LLAMA_SERVER_HOST": self.host, "LLAMA_SERVER_PORT": str(self.port), "OPENAI_BASE_URL": ""}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_healthy(url: str, deadline: float, process: subprocess.Popen | None = None, log: str = "") -> None:
    health = url.removesuffix("/v1") + "/health"
    while True:
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"the llama.cpp server at {url} did not become healthy:\n{log[-3000:]}")
        time.sleep(0.2)


def start_llama(log_dir: Path, port: int, supervised: bool = False, parallel: int = 4) -> LlamaServer:
    """Start `python -m apps.inference.serve` (supervised: with its restarting parent) on `port`."""
    log_path = log_dir / f"llama-{port}.log"
    env = {
        **os.environ,
        "LLAMA_SERVER_HOST": "127.0.0.1",
        "LLAMA_SERVER_PORT": str(port),
        "LLAMA_PARALLEL": str(parallel),
        "OPENAI_BASE_URL": "",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "apps.inference.serve", *([] if supervised else ["--child"])]
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", process, log_path)
    try:
        wait_healthy(server.url, time.monotonic() + 120, process, "")
    except RuntimeError:
        server.stop()
        raise RuntimeError(f"the llama.cpp server did not start:\n{server.log()[-3000:]}") from None
    return server


def reuse_llama(url: str) -> LlamaServer:
    wait_healthy(url, time.monotonic() + 10)
    return LlamaServer(url, None)
