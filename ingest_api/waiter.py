"""Wait for a transaction's outcome across API processes (``Prefer: wait=N``).

Workers ``NOTIFY punchline_applied`` in each batch transaction. Every API
process LISTENs on one connection and, when woken (or every ``poll_s`` as a
fallback if a notification is missed), looks up all of its pending waiters in
one query. No in-process knowledge of the worker is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.db.repositories import transactions
from punchline.db.repositories.batches import NOTIFY_CHANNEL
from punchline.db.repositories.transactions import TransactionRow

log = logging.getLogger(__name__)
Key = tuple[uuid.UUID, str, str]


class ResultWaiter:
    def __init__(self, engine: AsyncEngine, listen_dsn: str, *, poll_s: float = 0.25) -> None:
        self._engine = engine
        self._dsn = listen_dsn
        self._poll_s = poll_s
        self._waiters: dict[Key, list[asyncio.Future[TransactionRow]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="result-waiter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_listener()

    async def wait(self, key: Key, timeout_s: float) -> TransactionRow | None:
        future: asyncio.Future[TransactionRow] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(future)
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            return None
        finally:
            waiting = self._waiters.get(key)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiters[key]

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(self._dsn, timeout=2)
            await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)
        except Exception as exc:  # polling still works; retry the listener next round
            log.debug("LISTEN unavailable: %r", exc)
            self._listener = None

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _run(self) -> None:
        while True:
            if not self._waiters:
                self._wake.clear()
                await self._wake.wait()
            await self._ensure_listener()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            self._wake.clear()
            keys = list(self._waiters)
            if not keys:
                continue
            try:
                async with self._engine.connect() as conn:
                    found = await transactions.get_transactions(conn, keys)
            except Exception as exc:
                log.warning("result lookup failed: %r", exc)
                continue
            for key, row in found.items():
                for future in self._waiters.get(key, []):
                    if not future.done():
                        future.set_result(row)
