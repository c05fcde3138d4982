"""``punchline relay``: publish outbox rows to ``punchline.events.v1``, at least once.

Each round, in one Postgres transaction: claim a batch of unpublished rows in id
order (``FOR UPDATE SKIP LOCKED``, see :mod:`punchline.db.repositories.outbox`),
produce them keyed by org and customer with acks=all, wait for every ack, then
mark them published and commit. A crash between the acks and the commit
publishes the batch again, with the same event ids: consumers deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline import heartbeat
from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import outbox
from punchline.db.repositories.outbox import OutboxRow
from schemas.outbound_events import OutboundEvent
from workers.retry import retry_forever
from workers.topics import ensure_topics

log = logging.getLogger("punchline.relay")


def envelope(row: OutboxRow) -> OutboundEvent:
    return OutboundEvent(
        event_id=row.event_id,
        event_type=row.event_type,
        org_id=row.org_id,
        customer_code=row.customer_code,
        sequence=row.id,
        occurred_at=row.created_at,
        data=row.payload,
    )


def new_producer(settings: Settings) -> AIOKafkaProducer:
    # Tansu has no idempotent producer for aiokafka; acks=all and the stable event id
    # make a retried send harmless.
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=max(1000, int(settings.produce_timeout_s * 1000)),
    )


class OutboxRelay:
    def __init__(self, settings: Settings, engine: AsyncEngine, producer: AIOKafkaProducer) -> None:
        self._settings = settings
        self._engine = engine
        self._producer = producer
        self.published = 0

    async def publish_once(self) -> int:
        """Publish one batch; return its size (0 when nothing is waiting)."""
        async with self._engine.begin() as conn:
            rows = await outbox.claim(conn, limit=self._settings.relay_batch_size)
            if not rows:
                return 0
            topic = self._settings.events_topic
            # Bounded, so a dead broker releases the rows' locks and the retry takes over.
            async with asyncio.timeout(max(5.0, 4 * self._settings.produce_timeout_s)):
                futures = [
                    await self._producer.send(topic, envelope(row).to_json(), key=row.key)
                    for row in rows
                ]
                await asyncio.gather(*futures)
            await outbox.mark_published(conn, [row.id for row in rows])
        self.published += len(rows)
        return len(rows)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            heartbeat.beat(self._settings.heartbeat_path)
            sent = await retry_forever(
                self.publish_once,
                max_backoff_s=self._settings.db_retry_max_backoff_s,
                on_retry=lambda exc, tries: log.warning(
                    "publish failed; retrying", extra={"error": repr(exc)[:300], "tries": tries}
                ),
            )
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stopping.wait(), timeout=self._settings.relay_poll_interval_s
                    )


async def run_relay(settings: Settings) -> None:
    await ensure_topics(settings)
    engine = create_engine(settings, pool_size=2)
    producer = new_producer(settings)
    await producer.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    log.info("outbox relay started", extra={"topic": settings.events_topic})
    try:
        await OutboxRelay(settings, engine, producer).run(stopping)
    finally:
        await producer.stop()
        await engine.dispose()
