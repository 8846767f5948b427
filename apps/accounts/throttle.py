"""Failed-login and failed-token limits, counted in the shared cache (Redis).

A counter per account and per client address: each failure adds one, the counter
lives LOGIN_FAILURE_WINDOW_SECONDS from the first failure, and once it reaches its
limit the key is kept for LOGIN_LOCKOUT_SECONDS and every attempt is refused without
checking the password (so guessing stops and the password hasher is not a free CPU
burner). A success clears the account's counter only: the address counter keeps
counting, so an attacker cannot reset it by logging in to an account of their own.

Addresses get a higher limit than accounts because a classroom often shares one
address. Admins unlock with `manage.py unlock_logins` or the user admin's action.
"""

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache

ACCOUNT = "account"
ADDRESS = "address"
TOKEN_ADDRESS = "token-address"  # noqa: S105  (a counter: bad bearer tokens per address, not a secret)


def _key(kind: str, ident: str) -> str:
    digest = hashlib.sha256(ident.strip().lower().encode()).hexdigest()[:32]
    return f"atrium:throttle:{kind}:{digest}"


def _limit(kind: str) -> int:
    return {
        ACCOUNT: settings.LOGIN_FAILURE_LIMIT_PER_ACCOUNT,
        ADDRESS: settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS,
        TOKEN_ADDRESS: settings.TOKEN_FAILURE_LIMIT_PER_ADDRESS,
    }[kind]


def failures(kind: str, ident: str) -> int:
    return int(cache.get(_key(kind, ident)) or 0)


def retry_after(kind: str, ident: str) -> int:
    """Seconds until `ident` may try again; 0 when it is not locked out."""
    if not ident or failures(kind, ident) < _limit(kind):
        return 0
    until = cache.get(_key(kind, ident) + ":until")
    return max(1, math.ceil(until - time.time())) if until else settings.LOGIN_LOCKOUT_SECONDS


def record_failure(kind: str, ident: str) -> int:
    """Count one failure; returns the new count."""
    if not ident:
        return 0
    key = _key(kind, ident)
    cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        count = 1
    if count == _limit(kind):
        # Locked from now on, not from the first failure.
        lockout = settings.LOGIN_LOCKOUT_SECONDS
        cache.touch(key, timeout=lockout)
        cache.set(key + ":until", time.time() + lockout, timeout=lockout)
    return count


def clear(kind: str, ident: str) -> bool:
    """Forget `ident`'s failures; True if there were any."""
    if not ident:
        return False
    key = _key(kind, ident)
    cache.delete(key + ":until")
    return bool(cache.delete(key))


def minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def request_address(meta: dict) -> str:
    # REMOTE_ADDR is the peer the server saw. Behind a proxy, list the proxy in
    # FORWARDED_ALLOW_IPS so that it is the client's address (X-Forwarded-For), not the
    # proxy's, or every client would share one address counter.
    return str(meta.get("REMOTE_ADDR") or "")


def scope_address(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


class TokenThrottledError(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"locked for {retry_after} s")
        self.retry_after = retry_after


def user_for_token_from(raw: str, address: str):
    """The token's user, counting a bad token against the caller's address; raises
    TokenThrottledError while that address is locked out (checked before the token)."""
    from apps.accounts.services import user_for_token

    wait = retry_after(TOKEN_ADDRESS, address)
    if wait:
        raise TokenThrottledError(wait)
    user = user_for_token(raw)
    if user is None:
        record_failure(TOKEN_ADDRESS, address)
    return user
