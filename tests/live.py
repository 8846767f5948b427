"""Start the real processes (daphne web + Celery worker) against the test database.

Used by integration and browser tests; they must use `transactional_db` so what
the test writes is committed and visible to the other processes."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """DATABASE_URL with the database name replaced by the test database's."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + settings.DATABASES["default"]["NAME"]))


def process_env(**extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1", **extra})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path
    name: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_children(self) -> list[int]:
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def worker_command(queues: str, concurrency: int, name: str) -> list[str]:
    """A Celery worker for these queues, named name@host, as tests and benches start it."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]


def start_worker(
    log_dir: Path, queues: str = "cpu,interactive,batch", concurrency: int = 1, name: str = "test"
) -> Worker:
    log_path = log_dir / f"worker-{name}.log"
    process = subprocess.Popen(
        worker_command(queues, concurrency, name),
        cwd=BASE_DIR,
        env=process_env(),
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    worker = Worker(process, log_path, f"{name}@{socket.gethostname()}")
    deadline = time.monotonic() + 60
    while "ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Celery worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.2)
    return worker


@dataclass
class LiveStack:
    url: str
    web: subprocess.Popen
    worker: Worker
    log_dir: Path
    extra_workers: list = field(default_factory=list)

    def wait_until_idle(self, timeout: float = 60.0) -> None:
        """Wait until the running workers have no task running or reserved: a task still writing
        while a test's database is flushed deadlocks PostgreSQL's TRUNCATE."""
        from config.celery import app

        names = [w.name for w in [self.worker, *self.extra_workers] if w.process.poll() is None]
        if not names:
            return
        inspect = app.control.inspect(destination=names, timeout=2.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active, reserved = inspect.active() or {}, inspect.reserved() or {}
            if not any(active.values()) and not any(reserved.values()):
                return
            time.sleep(0.2)

    def stop(self) -> None:
        for worker in [self.worker, *self.extra_workers]:
            worker.stop()
        self.web.terminate()
        self.web.wait(timeout=20)


def start_stack(log_dir: Path, interactive_concurrency: int = 2) -> LiveStack:
    port = free_port()
    web_log = log_dir / "web.log"
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=BASE_DIR,
        env=process_env(),
        stdout=web_log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if web.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"daphne did not start:\n{web_log.read_text()[-3000:]}")
        time.sleep(0.2)
    # As in `make up`: batch work (SAE training, scoring, parser training) has its own worker,
    # so interactive work never waits behind it.
    worker = start_worker(log_dir, queues="cpu,interactive", concurrency=interactive_concurrency)
    batch = start_worker(log_dir, queues="batch", concurrency=1, name="batch")
    return LiveStack(url=url, web=web, worker=worker, log_dir=log_dir, extra_workers=[batch])
