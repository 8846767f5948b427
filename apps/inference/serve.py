"""The assistant model's serving process: llama.cpp (xllamacpp) over the OpenAI API on loopback.

`python -m apps.inference.serve` is what `make up` runs (Procfile `llm`). It supervises a child
that loads the GGUF and serves it; when the child dies (killed, out of memory, a crash in
llama.cpp) it is started again after a short pause, so one failure does not take the whole app
down (honcho stops every process when one exits). Requests in flight when the child dies fail
with a connection error; the openai backend turns that into a clean InferenceError and the job
may be retried.

Settings: LLAMA_SERVER_HOST / LLAMA_SERVER_PORT (where it listens), LLAMA_PARALLEL (slots served
at once), LLAMA_THREADS_PER_SLOT (CPU threads per slot, capped at the machine's cores less one: more
threads than free cores makes every slot slower), ASSISTANT_CONTEXT_LENGTH (tokens per slot).
With OPENAI_BASE_URL set the assistant is served elsewhere (vLLM) and this process only waits."""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

RESTART_PAUSE_SECONDS = (1, 2, 5, 10, 30)  # backoff while the child keeps dying at once
HEALTHY_AFTER_SECONDS = 60  # a child that lived this long resets the backoff


def say(line: str) -> None:
    print(f"[llm] {line}", flush=True)


def server_params(model_path: Path, host: str, port: int, parallel: int, threads_per_slot: int, context: int):
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path)
    params.hostnames = [host]
    params.port = port
    params.n_parallel = parallel
    # llama.cpp splits n_ctx evenly over the slots.
    params.n_ctx = context * parallel
    # All slots are decoded in one batch per step, by one thread pool. llama.cpp's threads wait
    # for each other at every step, so one descheduled thread stalls them all: leave a core for
    # web and workers (measured on 2 busy cores: 2 threads fell to 1-2 tokens/s, 1 thread 20).
    threads = max(1, min(parallel * threads_per_slot, (os.cpu_count() or 2) - 1))
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    return params


def run_child() -> None:
    """Load the model and serve until killed."""
    import xllamacpp
    from django.conf import settings

    from apps.inference import assistant_model

    name = settings.ASSISTANT_MODEL_NAME
    if not assistant_model.is_ready(settings.MODELS_DIR, name):
        say(f"{name} is not prepared under {settings.MODELS_DIR}: run `python manage.py prepare_models`")
        sys.exit(2)
    params = server_params(
        assistant_model.gguf_path(settings.MODELS_DIR, name),
        settings.LLAMA_SERVER_HOST,
        settings.LLAMA_SERVER_PORT,
        settings.LLAMA_PARALLEL,
        settings.LLAMA_THREADS_PER_SLOT,
        settings.ASSISTANT_CONTEXT_LENGTH,
    )
    started = time.monotonic()
    server = xllamacpp.Server(params)
    say(
        f"{name} ready in {time.monotonic() - started:.1f}s at {server.listening_address}/v1 "
        f"({params.n_parallel} slots, {params.cpuparams.n_threads} threads)"
    )
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    while True:
        signal.pause()


def supervise() -> None:
    from django.conf import settings

    if settings.OPENAI_BASE_URL:
        say(f"the assistant is served at {settings.OPENAI_BASE_URL}; no local llama.cpp server")
        signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
        while True:
            signal.pause()
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failures = 0
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", "apps.inference.serve", "--child"])
        code = child.wait()
        if stopping:
            break
        failures = 0 if time.monotonic() - started > HEALTHY_AFTER_SECONDS else failures + 1
        pause = RESTART_PAUSE_SECONDS[min(failures, len(RESTART_PAUSE_SECONDS) - 1)]
        say(f"the llama.cpp server exited ({code}); starting it again in {pause}s")
        time.sleep(pause)
    if child is not None:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help="serve in this process (the supervisor's child)")
    args = parser.parse_args()
    if args.child:
        run_child()
    else:
        supervise()


if __name__ == "__main__":
    main()
