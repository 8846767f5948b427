"""Plain HTTP requests served by Django's WSGI handler on a fixed pool of threads.

Under Django's ASGI handler every synchronous middleware and view is a separate hop between the
event loop and a thread (about fifteen per page here: the middleware run in async mode, WhiteNoise
is sync-only, and each request gets a new thread, hence a new database connection wrapper). Measured
in process on this machine, the student home page took 7.7 ms through the ASGI handler and 3.0 ms
through the WSGI handler. So the ASGI application hands each HTTP request to the WSGI handler in one
hop: the whole middleware chain, the view and the response's close (which hands the database
connection back) run in one pool thread, and the threads live as long as the process. Views written
as coroutines (the OpenAI-compatible /v1 stream) still go to Django's ASGI handler, and WebSockets
to Channels (config/asgi.py).
"""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile
from typing import Any

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.urls import Resolver404, resolve

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def has_async_view(path: str) -> bool:
    """Whether the view for this path is a coroutine function (it needs Django's ASGI handler)."""
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return asyncio.iscoroutinefunction(match.func)


def wsgi_environ(scope: Scope, body: SpooledTemporaryFile, body_length: int) -> dict:
    """The WSGI environ of an ASGI HTTP scope (PEP 3333; headers joined as a WSGI server joins them)."""
    script_name = scope.get("root_path", "").encode("utf8").decode("latin1")
    path_info = scope["path"].encode("utf8").decode("latin1")
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name) :]
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope["query_string"].decode("latin1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # The body was read whole: its real length, whatever the client declared (or not, if chunked).
        "CONTENT_LENGTH": str(body_length),
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"] = scope["client"][0]
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin1").upper().replace("-", "_")
        if name == "CONTENT_LENGTH":
            continue
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        value = raw_value.decode("latin1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class ThreadedWSGI:
    """An ASGI application for HTTP: Django's WSGI handler on `threads` threads of this process."""

    def __init__(self, async_app: Callable, threads: int) -> None:
        self.wsgi = WSGIHandler()
        self.async_app = async_app  # Django's ASGI handler, for coroutine views
        self.threads = threads
        self.executor: ThreadPoolExecutor | None = None

    def _executor(self, loop: asyncio.AbstractEventLoop) -> ThreadPoolExecutor:
        if self.executor is None:
            # Code in these threads that calls async_to_sync (the Channels layer) runs on this
            # process's event loop, as it does under Django's ASGI handler, not on a new loop per call.
            def remember_loop() -> None:
                SyncToAsync.threadlocal.main_event_loop = loop

            self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="http", initializer=remember_loop)
        return self.executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"HTTP only, not {scope['type']}")
        if has_async_view(scope["path"]):
            await self.async_app(scope, receive, send)
            return
        with SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE) as body:
            length = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                body.write(chunk)
                length += len(chunk)
                if not message.get("more_body"):
                    break
            body.seek(0)
            loop = asyncio.get_running_loop()
            start, chunks = await loop.run_in_executor(
                self._executor(loop), self._respond, wsgi_environ(scope, body, length), send, loop
            )
        if start is not None:  # a whole response; a streamed one was sent from the thread
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})

    def _respond(self, environ: dict, send: Send, loop: asyncio.AbstractEventLoop) -> tuple[dict | None, list]:
        """Run in a pool thread: the whole request, its response and its close (so request_finished
        returns this thread's database connection, not another thread's)."""
        started: dict = {}

        def start_response(status: str, headers: list, exc_info: Any = None) -> None:
            started["message"] = {
                "type": "http.response.start",
                "status": int(status.split(" ", 1)[0]),
                "headers": [(name.lower().encode("latin1"), value.encode("latin1")) for name, value in headers],
            }

        response = self.wsgi(environ, start_response)
        try:
            if not getattr(response, "streaming", False):
                return started["message"], list(response)

            def send_now(message: dict) -> None:  # a file or stream: chunk by chunk, as the client reads
                asyncio.run_coroutine_threadsafe(send(message), loop).result()

            send_now(started["message"])
            for chunk in response:
                send_now({"type": "http.response.body", "body": chunk, "more_body": True})
            send_now({"type": "http.response.body"})
            return None, []
        finally:
            response.close()
