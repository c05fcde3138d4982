"""Slow down or stop: which failures are worth retrying, and the backoff between tries."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLSTATE classes that mean "try again": connection, resources, serialization, deadlock.
_RETRYABLE_SQLSTATE_PREFIXES = ("08", "53", "57", "40")
# asyncpg errors that mean "this connection is gone", whatever SQLAlchemy wrapped them in.
# InternalClientError ("cannot switch to state …; another operation is in progress") has
# no SQLSTATE: it is what the next statement gets when the server's FATAL on shutdown
# reached an idle connection before its end of file. SQLAlchemy flags it as a disconnect
# only if asyncpg has seen the socket close by then, so ``connection_invalidated`` can be
# False for it; the pool drops the connection when its rollback fails.
_DEAD_CONNECTION = (
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
)


def _dead_connection(exc: BaseException) -> bool:
    """``exc``, the driver error it wraps, or their causes say the connection died."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending and len(seen) < 8:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        if isinstance(current, _DEAD_CONNECTION):
            return True
        seen.append(current)
        pending += [current.__cause__, getattr(current, "orig", None)]
    return False


def is_transient(exc: BaseException) -> bool:
    from workers.sink import ConcurrentWrite

    if isinstance(exc, ConcurrentWrite | KafkaError | OSError | asyncio.TimeoutError):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if _dead_connection(exc):
        return True
    if isinstance(exc, asyncpg.PostgresError):  # raised by asyncpg itself, unwrapped
        return str(exc.sqlstate or "").startswith(_RETRYABLE_SQLSTATE_PREFIXES)
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return bool(code) and str(code).startswith(_RETRYABLE_SQLSTATE_PREFIXES)
    return False


async def retry_forever(
    attempt: Callable[[], Awaitable[T]],
    *,
    max_backoff_s: float,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """Retry ``attempt`` while it fails transiently; re-raise anything else.

    Holding the batch here holds its partitions back: nothing after it is
    acknowledged until it is written.
    """
    tries = 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not is_transient(exc):
                raise
            tries += 1
            if on_retry is not None:
                on_retry(exc, tries)
            delay = min(max_backoff_s, 0.05 * 2**tries) * (0.5 + random.random() / 2)
            await asyncio.sleep(delay)
