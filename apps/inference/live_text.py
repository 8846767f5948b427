"""The text of a running generation, kept in Redis as it grows.

The worker appends each batch here *before* publishing it, so a socket that joins
the job's group and then reads this key has seen every character exactly once
(deltas carry their start offset; anything already read is trimmed)."""

from functools import cache

import redis
from django.conf import settings

EXPIRY_SECONDS = 24 * 3600


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _key(job_id: int) -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:gen-text:{job_id}"


def reset(job_id: int) -> None:
    redis_client().delete(_key(job_id))


def append(job_id: int, text: str) -> None:
    key = _key(job_id)
    pipe = redis_client().pipeline()
    pipe.append(key, text.encode())
    pipe.expire(key, EXPIRY_SECONDS)
    pipe.execute()


def read(job_id: int) -> str:
    value = redis_client().get(_key(job_id))
    return value.decode(errors="replace") if value else ""


def trim_delta(already_sent: int, start: int, text: str) -> str:
    """The part of a delta (text starting at character `start`) not yet sent."""
    if start + len(text) <= already_sent:
        return ""
    return text[max(0, already_sent - start) :]
