"""Inference benchmark: the assistant model raw from its llama.cpp server against the full path.

(a) raw: the openai backend in this process straight to the llama.cpp server (apps.inference.serve).
(b) full: POST /api/generate -> Celery (interactive worker) -> llama.cpp server -> Redis ->
    Channels -> a WebSocket client.
(c) concurrency: 4 chats at once through the full path against 1 (the server's parallel slots).

Prints tokens/s and time to first token for (a) and (b) with their ratio and the first-token
overhead, and the aggregate tokens/s of (c). Run with `make bench` (uses DATABASE_URL /
REDIS_URL; migrates the database it is given). BENCH_LLAMA_URL reuses a running server;
otherwise one is started here with the settings make up uses (LLAMA_PARALLEL, threads)."""

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import psutil  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from apps.accounts.models import Role, User  # noqa: E402
from apps.accounts.services import create_api_token  # noqa: E402
from apps.inference.backends import GenerationParams  # noqa: E402
from apps.inference.models import Generation  # noqa: E402
from apps.inference.registry import all_models, get_model, role_model_names  # noqa: E402
from apps.inference.services import load_backend  # noqa: E402

TOKENS = int(os.environ.get("BENCH_TOKENS", "96"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
PARALLEL_CHATS = int(os.environ.get("BENCH_PARALLEL", "4"))
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]
PARAMS = {"temperature": 0.0, "max_tokens": TOKENS, "seed": 7}


def model_name() -> str:
    return os.environ.get("BENCH_MODEL") or role_model_names()["assistant"]


def raw_run() -> tuple[float, float, int]:
    backend = load_backend(get_model(model_name()))
    started = time.perf_counter()
    first = None
    count = 0
    for _piece in backend.chat(MESSAGES, GenerationParams(**PARAMS)):
        if first is None:
            first = time.perf_counter()
        count += 1
    end = time.perf_counter()
    return (count - 1) / (end - first), (first - started) * 1000, count


def full_run(url: str, token: str) -> tuple[float, float, int, float]:
    """tokens/s, first token ms, tokens, and the wall time from request to last token."""
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/api/generate",
        json={"model": model_name(), "messages": MESSAGES, "params": PARAMS},
        headers=headers,
        timeout=60,
    )
    response.raise_for_status()
    job_id = response.json()["job_id"]
    first = end = None
    with connect(
        url.replace("http", "ws") + f"/ws/generations/{job_id}/?format=json", additional_headers=headers
    ) as socket:
        while True:
            message = json.loads(socket.recv(timeout=600))
            if message["type"] in ("snapshot", "delta") and message["text"]:
                # Like the raw run, the clock stops at the last token, not at the final bookkeeping.
                end = time.perf_counter()
                first = first or end
            if message["type"] == "status" and message["status"] in ("succeeded", "failed", "cancelled"):
                if message["status"] != "succeeded":
                    raise RuntimeError(f"generation {job_id} {message['status']}: {message.get('error')}")
                break
    count = Generation.objects.get(job_id=job_id).completion_tokens
    return (count - 1) / (end - first), (first - started) * 1000, count, end - started


def parallel_run(url: str, token: str, chats: int) -> tuple[float, list[float]]:
    """Aggregate tokens/s of `chats` full-path chats started together, and each one's tokens/s."""
    results: list[tuple] = []
    errors: list[Exception] = []

    def one() -> None:
        try:
            results.append(full_run(url, token))
        except Exception as exc:  # noqa: BLE001  (reported below, the bench goes on)
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(chats)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} of {chats} parallel chats failed: {errors[0]}")
    return sum(r[2] for r in results) / wall, [r[0] for r in results]


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def start_server():
    """The llama.cpp server: BENCH_LLAMA_URL's, or one started here as make up starts it."""
    from tests.live import free_port
    from tests.llama import reuse_llama, start_llama

    url = os.environ.get("BENCH_LLAMA_URL")
    if url:
        server = reuse_llama(url)
    else:
        call_command("prepare_models", model=[settings.ASSISTANT_MODEL_NAME], verbosity=0)
        server = start_llama(Path(tempfile.mkdtemp(prefix="atrium-bench-llama-")), free_port(), supervised=True)
    os.environ.update(server.env())
    settings.LLAMA_SERVER_URL, settings.OPENAI_BASE_URL = server.url, ""
    all_models.cache_clear()
    return server


def server_memory_mb(server) -> float | None:
    if server.process is None:
        return None
    process = psutil.Process(server.process.pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def main() -> None:
    from tests.live import start_stack

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench", defaults={"role": Role.RESEARCHER})
    _token, raw_token = create_api_token(user, "bench")
    server = start_server()
    stack = None
    try:
        raw_run()  # warm-up
        raw = [raw_run() for _ in range(RUNS)]
        stack = start_stack(
            Path(tempfile.mkdtemp(prefix="atrium-bench-")), interactive_concurrency=max(2, PARALLEL_CHATS)
        )
        full_run(stack.url, raw_token)  # warm-up: the worker's first request
        full = [full_run(stack.url, raw_token) for _ in range(RUNS)]
        single_wall = median([r[3] for r in full])
        single_aggregate = median([r[2] for r in full]) / single_wall
        parallel_aggregate, parallel_each = parallel_run(stack.url, raw_token, PARALLEL_CHATS)
        memory = server_memory_mb(server)
    finally:
        if stack is not None:
            stack.stop()
        server.stop()

    raw_tps, raw_ttft = median([r[0] for r in raw]), median([r[1] for r in raw])
    full_tps, full_ttft = median([r[0] for r in full]), median([r[1] for r in full])
    print(
        f"model {model_name()} at {settings.LLAMA_SERVER_URL}, {TOKENS} max tokens, greedy, seed 7, "
        f"median of {RUNS} runs; server: {settings.LLAMA_PARALLEL} slots, "
        f"{settings.LLAMA_THREADS_PER_SLOT} thread(s) per slot (capped at cores - 1), {os.cpu_count()} cores"
    )
    print(f"tokens per run: raw {[r[2] for r in raw]}, full {[r[2] for r in full]}")
    print(f"raw llama.cpp : {raw_tps:6.1f} tokens/s, first token {raw_ttft:7.1f} ms")
    print(f"full path     : {full_tps:6.1f} tokens/s, first token {full_ttft:7.1f} ms")
    print(f"ratio full/raw tokens/s: {full_tps / raw_tps:.3f} (goal >= 0.95)")
    print(f"first token overhead: {full_ttft - raw_ttft:+.1f} ms (goal <= +150 ms)")
    print(
        f"{PARALLEL_CHATS} chats at once: {parallel_aggregate:.1f} tokens/s in all "
        f"(each {', '.join(f'{t:.1f}' for t in parallel_each)}); one chat: {single_aggregate:.1f} tokens/s "
        f"request to last token; gain {parallel_aggregate / single_aggregate:.2f}x (goal >= 1.5x)"
    )
    if memory is not None:
        print(f"serving process memory (RSS, supervisor and llama.cpp child): {memory:.0f} MiB")


if __name__ == "__main__":
    main()
