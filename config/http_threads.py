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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile
from typing import Any

from asgiref.sync import SyncToAsync
from asgiref.wsgi import WsgiToAsgiInstance
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
    """The WSGI environ of an ASGI HTTP scope, as asgiref's WSGI adapter builds it (repeated headers
    joined with commas; ValueError past 100 of one name), with the length of the body as read."""
    adapter = WsgiToAsgiInstance(None)
    adapter.scope = scope  # build_environ reads the headers from here
    # asgiref decodes the query as ASCII; a WSGI server passes its raw bytes on as latin-1.
    environ = adapter.build_environ({**scope, "query_string": b""}, body)
    environ["QUERY_STRING"] = scope["query_string"].decode("latin1")
    # The body was read whole: its real length, whatever the client declared (or not, if chunked).
    environ["CONTENT_LENGTH"] = str(body_length)
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
            try:
                environ = wsgi_environ(scope, body, length)
            except ValueError:  # more than 100 headers of one name (asgiref's limit)
                await send(
                    {"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"Bad Request: too many headers of one name"})
                return
            loop = asyncio.get_running_loop()
            start, chunks = await loop.run_in_executor(self._executor(loop), self._respond, environ, send, loop)
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
