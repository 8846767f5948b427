"""The production HTTP + WebSocket server: `python -m config.web`.

uvicorn with WEB_PROCESSES worker processes sharing one listening socket (uvloop and httptools
when installed). WebSockets work across processes because the Channels layer is Redis, so a
token sent by a worker reaches a socket held by any web process. daphne, which `runserver` and
the tests use, serves from one process only: on two cores it stopped near 25 requests/s
(issue 18's load test), which is why production uses this.

Host and port come from ATRIUM_HOST / ATRIUM_PORT (as `make up`), the number of processes from
WEB_PROCESSES (config/settings.py).
"""

import os
import sys

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Each web process keeps a pool of database connections (see DB_POOL_SIZE in settings).
    os.environ.setdefault("DB_POOL_SIZE", "8")
    sys.path.insert(0, BASE_DIR)
    import uvicorn

    from config import settings

    uvicorn.run(
        "config.asgi:application",
        host=os.environ.get("ATRIUM_HOST", "127.0.0.1"),
        port=int(os.environ.get("ATRIUM_PORT", "8000")),
        workers=settings.WEB_PROCESSES,
        lifespan="off",  # Django's ASGI handler has no lifespan events
        # X-Forwarded-For / -Proto are believed from these proxies only (REMOTE_ADDR feeds the
        # log-in throttle, so it must not be spoofable).
        proxy_headers=True,
        forwarded_allow_ips=settings.FORWARDED_ALLOW_IPS,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_keep_alive=5,
        # The supervisor restarts a process that does not answer its ping in time. Loading Django
        # and the apps takes tens of seconds on a busy two-core machine; 5 s (the default) killed
        # every process before it could serve.
        timeout_worker_healthcheck=60,
        access_log=settings.WEB_ACCESS_LOG,
    )


if __name__ == "__main__":
    main()
