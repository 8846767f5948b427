"""Publishing to Channels groups from synchronous code (views, Celery tasks).

channels-redis keeps connection pools per event loop. Calling
`async_to_sync(group_send)` repeatedly makes a new loop each time and, inside a
long-lived Celery worker, ends in "Event loop is closed". Instead every process
owns one event loop on a background thread and all sends go through it.
"""

import asyncio
import os
import threading
from concurrent.futures import Future

from channels.layers import get_channel_layer

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # After a fork (Celery's prefork pool) the parent's thread is gone.
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="channels-publisher", daemon=True).start()
        return _loop


def send_to_group(group: str, message: dict, wait: bool = True, timeout: float = 5.0) -> Future:
    """Send `message` to a Channels group. With wait=False the caller goes on at once
    (token streaming); messages still arrive in order because one loop sends them."""
    layer = get_channel_layer()
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _publisher_loop())
    if wait:
        future.result(timeout=timeout)
    return future
