"""The Tables bench through the public API and a real Celery worker (bench/tables_eval.py --via api).

Starts what a deployment runs: the web process (config.web, one process) and a Celery worker for
the queue that answers table questions, against the database and Redis in DATABASE_URL / REDIS_URL
(migrated here first; use a database and a Redis database of your own: the bench adds a user and
workbooks, and empties the `interactive` queue of what a stopped run left), with
the assistant model at OPENAI_BASE_URL or the project's llama server setting. A user with an API
token uploads each bench table as a file (CSV; XLSX when a question needs the workbook's other
sheets; DOCX with its paragraph for the document table), asks over HTTP with the mode, polls
GET /api/jobs/{id} until the job ends, and reads the answer from GET /api/tables/messages/{id}.
Edits are undone after scoring, so every question sees the table as uploaded. Both processes are
stopped at the end."""

import io
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
from django.conf import settings

from tests.live import free_port, worker_command

BASE_DIR = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.1
DONE = {"succeeded", "failed", "cancelled"}
COMPLETIONS = re.compile(r"POST \S+/chat/completions")


def ensure_database(url: str) -> None:
    """Create the database named in `url` when missing, then migrate it."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from django.core.management import call_command

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", interactive=False, verbosity=0)


def bench_token() -> str:
    """A fresh API token for the bench's own user (created once)."""
    from apps.accounts.models import User
    from apps.accounts.services import create_api_token

    user, created = User.objects.get_or_create(username="tables-bench", defaults={"role": "researcher"})
    if created:
        user.set_unusable_password()
        user.save()
    return create_api_token(user, "tables bench")[1]


@dataclass
class Stack:
    """The web process and one worker, with their logs."""

    url: str
    processes: list[subprocess.Popen]
    worker_log: Path
    logs: list[Path] = field(default_factory=list)

    def completions_so_far(self) -> int:
        """Requests the worker has sent the model server (httpx logs each one)."""
        return len(COMPLETIONS.findall(self.worker_log.read_text(errors="replace")))

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def purge_queue(name: str = "interactive") -> int:
    """Drop what an earlier, stopped run left in the queue: the new worker would answer it first
    and the first question would wait for it (65 s once). Only for the bench's own Redis."""
    from config.celery import app

    with app.connection_for_write() as connection:
        return connection.default_channel.queue_purge(name) or 0


def start_stack(log_dir: Path, concurrency: int = 1) -> Stack:
    """config.web on a free port and `celery worker -Q interactive` (where tables.ask runs)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    purge_queue()
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WEB_PROCESSES": "1", "ATRIUM_PORT": str(port)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    web_log, worker_log = log_dir / "web.log", log_dir / "worker.log"
    commands = [
        ([sys.executable, "-m", "config.web"], web_log),
        (worker_command("interactive", concurrency, f"tables-bench-{port}"), worker_log),
    ]
    processes = []
    for command, log in commands:
        # A session of their own: stop() ends each one with its children (pool, sandbox server).
        processes.append(
            subprocess.Popen(
                command, cwd=BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    stack = Stack(f"http://127.0.0.1:{port}", processes, worker_log, [web_log, worker_log])
    deadline = time.monotonic() + 120
    while True:
        try:
            web_up = httpx.get(stack.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            web_up = False
        if web_up and "ready." in worker_log.read_text(errors="replace"):
            return stack
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            stack.stop()
            tails = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-2000:]}" for log in stack.logs)
            raise RuntimeError(f"the web process or the worker did not start:\n{tails}")
        time.sleep(0.3)


def docx_bytes(frame: pd.DataFrame, context: str) -> bytes:
    """A document as a user would send it: a paragraph, then the table with a header row."""
    import docx

    document = docx.Document()
    document.add_paragraph(context)
    table = document.add_table(rows=len(frame) + 1, cols=frame.shape[1])
    for column, name in enumerate(frame.columns):
        table.cell(0, column).text = str(name)
    for row, values in enumerate(frame.itertuples(index=False), start=1):
        for column, value in enumerate(values):
            table.cell(row, column).text = str(value)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def upload_file(table: str, frames: dict[str, pd.DataFrame], others: list[str], context: str) -> tuple[str, bytes]:
    if context:
        return f"{table}.docx", docx_bytes(frames[table], context)
    if not others:
        return f"{table}.csv", frames[table].to_csv(index=False).encode()
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name in [table, *others]:
            frames[name].to_excel(writer, sheet_name=name, index=False)
    return f"{table}.xlsx", out.getvalue()


class ApiBench:
    """Uploads, asks and reads answers over HTTP as a script with a token would."""

    def __init__(self, stack: Stack, token: str) -> None:
        self.stack = stack
        self.client = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        self.sheets: dict[tuple, tuple[int, dict[str, pd.DataFrame]]] = {}

    def sheet_for(self, table: str, frames: dict, others: list[str], context: str) -> tuple[int, dict]:
        """The uploaded sheet for a table (with these other sheets), and every sheet's table as
        the server read it (the gold answers are computed from those)."""
        key = (table, tuple(others))
        if key not in self.sheets:
            from apps.tables import workbooks

            file_name, data = upload_file(table, frames, others, context)
            reply = self.client.post("/api/tables/workbooks", files={"file": (file_name, data)})
            reply.raise_for_status()
            sheets = reply.json()["sheets"]
            if context:
                read = {table: workbooks.read_document(file_name, data)[0].frame}
            else:
                read = dict(workbooks.read_upload(file_name, data))
                if not others:
                    read = {table: next(iter(read.values()))}
            sheet_id = next((s["id"] for s in sheets if s["name"] == table), sheets[0]["id"])
            self.sheets[key] = (sheet_id, read)
        return self.sheets[key]

    def ask(self, sheet_id: int, question: str, mode: str) -> dict:
        """POST the question, poll the job until it ends; the answer with the seconds it took
        end to end (from the request to the job's end as the poll saw it) and what the job says
        about its own queue wait and run."""
        requests_before = self.stack.completions_so_far()
        started = time.monotonic()
        reply = self.client.post(f"/api/tables/sheets/{sheet_id}/ask", json={"question": question, "mode": mode})
        reply.raise_for_status()
        message = reply.json()
        try:
            while True:
                job = self.client.get(f"/api/jobs/{message['job_id']}").json()
                if job["status"] in DONE:
                    break
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            self.client.post(f"/api/jobs/{message['job_id']}/cancel")  # stopped: leave no work behind
            raise
        seconds = time.monotonic() - started
        answer = self.client.get(f"/api/tables/messages/{message['id']}").json()
        created, begun, ended = (
            pd.Timestamp(job[k]) if job[k] else None for k in ("created_at", "started_at", "finished_at")
        )
        return {
            "message": answer,
            "job_status": job["status"],
            "seconds": round(seconds, 2),
            "queued": round((begun - created).total_seconds(), 2) if begun else None,
            "ran": round((ended - begun).total_seconds(), 2) if begun and ended else None,
            "requests": self.stack.completions_so_far() - requests_before,
        }

    def version_table(self, version_id: int) -> pd.DataFrame:
        reply = self.client.get(f"/api/tables/versions/{version_id}/download", params={"format": "csv"})
        reply.raise_for_status()
        return pd.read_csv(io.StringIO(reply.text))

    def undo(self, sheet_id: int) -> None:
        self.client.post(f"/api/tables/sheets/{sheet_id}/undo").raise_for_status()

    def close(self) -> None:
        self.client.close()


def assistant_url() -> str:
    return settings.OPENAI_BASE_URL or settings.LLAMA_SERVER_URL
