"""Inference benchmark: the raw backend vs the full path, same model, seed and prompt.

(a) raw: the transformers backend called in this process.
(b) full: POST /api/generate -> Celery -> gpu worker -> Redis -> Channels -> a WebSocket client.

Prints tokens/s and time to first token for both, and their ratio. Run with `make bench`
(uses DATABASE_URL / REDIS_URL; migrates the database it is given)."""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from apps.accounts.models import Role, User  # noqa: E402
from apps.accounts.services import create_api_token  # noqa: E402
from apps.inference.backends import GenerationParams  # noqa: E402
from apps.inference.models import Generation  # noqa: E402
from apps.inference.registry import get_model  # noqa: E402
from apps.inference.services import load_backend  # noqa: E402

MODEL = os.environ.get("BENCH_MODEL", "smollm2-135m")
TOKENS = int(os.environ.get("BENCH_TOKENS", "128"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]
PARAMS = {"temperature": 0.0, "max_tokens": TOKENS, "seed": 7, "repetition_penalty": 1.2}


def raw_run() -> tuple[float, float, int]:
    backend = load_backend(get_model(MODEL))
    started = time.perf_counter()
    first = None
    count = 0
    for _piece in backend.chat(MESSAGES, GenerationParams(**PARAMS)):
        if first is None:
            first = time.perf_counter()
        count += 1
    end = time.perf_counter()
    return (count - 1) / (end - first), (first - started) * 1000, count


def full_run(url: str, token: str) -> tuple[float, float, int]:
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/api/generate",
        json={"model": MODEL, "messages": MESSAGES, "params": PARAMS},
        headers=headers,
        timeout=60,
    )
    response.raise_for_status()
    job_id = response.json()["job_id"]
    first = None
    with connect(
        url.replace("http", "ws") + f"/ws/generations/{job_id}/?format=json", additional_headers=headers
    ) as socket:
        while True:
            message = json.loads(socket.recv(timeout=300))
            if message["type"] in ("snapshot", "delta") and message["text"]:
                # Like the raw run, the clock stops at the last token, not at the final bookkeeping.
                end = time.perf_counter()
                first = first or end
            if message["type"] == "status" and message["status"] in ("succeeded", "failed", "cancelled"):
                break
    generation = Generation.objects.get(job_id=job_id)
    count = generation.completion_tokens
    return (count - 1) / (end - first), (first - started) * 1000, count


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    from tests.live import start_stack

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench", defaults={"role": Role.RESEARCHER})
    _token, raw_token = create_api_token(user, "bench")

    load_backend(get_model(MODEL))  # load outside the timing
    raw_run()  # warm-up
    raw = [raw_run() for _ in range(RUNS)]

    os.environ["ATRIUM_PRELOAD_MODELS"] = MODEL
    stack = start_stack(Path(tempfile.mkdtemp(prefix="atrium-bench-")))
    try:
        full_run(stack.url, raw_token)  # warm-up: the worker's first request
        full = [full_run(stack.url, raw_token) for _ in range(RUNS)]
    finally:
        stack.stop()

    raw_tps, raw_ttft = median([r[0] for r in raw]), median([r[1] for r in raw])
    full_tps, full_ttft = median([r[0] for r in full]), median([r[1] for r in full])
    print(
        f"model {MODEL}, {TOKENS} max tokens, greedy, seed 7, median of {RUNS} runs, device {settings.MODEL_DEVICE}, "
        f"MODEL_THREADS={settings.MODEL_THREADS or 'torch default'}"
    )
    print(f"tokens per run: raw {[r[2] for r in raw]}, full {[r[2] for r in full]}")
    print(f"raw backend : {raw_tps:6.1f} tokens/s, first token {raw_ttft:7.1f} ms")
    print(f"full path   : {full_tps:6.1f} tokens/s, first token {full_ttft:7.1f} ms")
    print(f"ratio full/raw tokens/s: {full_tps / raw_tps:.3f} (goal >= 0.95)")
    print(f"first token overhead: {full_ttft - raw_ttft:+.1f} ms (goal <= +150 ms)")


if __name__ == "__main__":
    main()
