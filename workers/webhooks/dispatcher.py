"""``punchline webhooks``: the fan-out consumer plus one delivery task per leased endpoint.

The scheduler polls Postgres for endpoints with a due delivery and no live lease,
leases them, and starts an :class:`EndpointWorker` for each. Several dispatchers
may run: a lease gives each endpoint to one of them at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline import heartbeat
from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import webhooks
from workers.retry import is_transient
from workers.topics import ensure_topics
from workers.webhooks import sender
from workers.webhooks.endpoint_worker import EndpointWorker, Policy
from workers.webhooks.fanout import FanOut

log = logging.getLogger("punchline.webhooks")
_MAX_ENDPOINT_TASKS = 10_000
_DRAIN_S = 15.0


class Dispatcher:
    def __init__(self, settings: Settings, engine: AsyncEngine, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._engine = engine
        self.owner = uuid.uuid4()
        self.stopping = asyncio.Event()
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._worker = EndpointWorker(
            engine=engine,
            client=client,
            policy=Policy.from_settings(settings),
            owner=self.owner,
            gate=asyncio.Semaphore(settings.webhook_concurrency),
            stopping=self.stopping,
        )

    async def schedule_once(self) -> int:
        room = _MAX_ENDPOINT_TASKS - len(self._tasks)
        if room <= 0:
            return 0
        async with self._engine.begin() as conn:
            claimed = await webhooks.claim_due(
                conn, owner=self.owner, lease_s=self._settings.webhook_lease_s, limit=room
            )
        started = 0
        for endpoint_id in claimed:
            if endpoint_id in self._tasks:
                continue
            task = asyncio.create_task(self._worker.run(endpoint_id))
            self._tasks[endpoint_id] = task
            task.add_done_callback(lambda _t, e=endpoint_id: self._tasks.pop(e, None))
            started += 1
        return started

    async def run(self) -> None:
        fanout = asyncio.create_task(FanOut(self._settings, self._engine).run(self.stopping))
        try:
            while not self.stopping.is_set():
                heartbeat.beat(self._settings.heartbeat_path)
                if fanout.done():
                    fanout.result()  # a dead fan-out stops the process loudly
                    raise RuntimeError("the fan-out consumer stopped")
                try:
                    await self.schedule_once()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    log.warning("scheduling failed; retrying", extra={"error": repr(exc)[:300]})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.stopping.wait(), timeout=self._settings.webhook_poll_interval_s
                    )
        finally:
            self.stopping.set()
            pending = [fanout, *self._tasks.values()]
            _done, late = await asyncio.wait(pending, timeout=_DRAIN_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


async def run_webhooks(settings: Settings) -> None:
    await ensure_topics(settings)
    engine = create_engine(settings, pool_size=5)
    client = sender.new_client(
        timeout_s=settings.webhook_timeout_s, max_connections=settings.webhook_concurrency
    )
    dispatcher = Dispatcher(settings, engine, client)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.stopping.set)
    log.info("webhook dispatcher started", extra={"owner": str(dispatcher.owner)})
    try:
        await dispatcher.run()
    finally:
        await client.aclose()
        await engine.dispose()
