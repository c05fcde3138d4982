"""Fan-out: read ``punchline.events.v1`` and record one delivery per subscribed endpoint.

A plain aiokafka consumer (see docs/adr/0005): poll a batch, write its
deliveries in one Postgres transaction, then commit the offsets. Kafka may
redeliver; the unique (endpoint_id, event_id) absorbs it. An endpoint receives
the events that happened after it was registered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from punchline.db.repositories import webhook_deliveries, webhooks
from punchline.db.repositories.webhook_deliveries import NewDelivery
from schemas.outbound_events import OutboundEvent, subscribed
from workers.retry import retry_forever

log = logging.getLogger("punchline.webhooks")


def decode(records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[tuple[OutboundEvent, str]]:
    """(event, exact body) pairs; a message that is not an event is logged and skipped."""
    events = []
    for record in records:
        try:
            raw = record.value or b""
            events.append((OutboundEvent.model_validate_json(raw), raw.decode()))
        except (ValidationError, UnicodeDecodeError) as exc:
            log.warning(
                "skipping a message that is not an event",
                extra={"partition": record.partition, "offset": record.offset, "error": str(exc)},
            )
    return events


async def write(engine: AsyncEngine, records: Sequence[ConsumerRecord[bytes, bytes]]) -> int:
    events = decode(records)
    if not events:
        return 0
    async with engine.begin() as conn:
        subs = await webhooks.subscriptions(conn, {event.org_id for event, _ in events})
        deliveries = [
            NewDelivery(event.org_id, sub.id, event.event_id, event.event_type, body)
            for event, body in events
            for sub in subs.get(event.org_id, [])
            if subscribed(sub.events, event.event_type) and sub.created_at <= event.occurred_at
        ]
        return await webhook_deliveries.enqueue(conn, deliveries)


class FanOut:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine

    def _consumer(self) -> AIOKafkaConsumer:
        session_ms = int(self._settings.session_timeout_s * 1000)
        return AIOKafkaConsumer(
            self._settings.events_topic,
            bootstrap_servers=self._settings.kafka_bootstrap,
            group_id=self._settings.webhook_consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(300, session_ms // 5),
        )

    async def run(self, stopping: asyncio.Event) -> None:
        consumer = self._consumer()
        await consumer.start()
        try:
            while not stopping.is_set():
                polled = await consumer.getmany(timeout_ms=300, max_records=500)
                records = [r for batch in polled.values() for r in batch]
                if not records:
                    continue
                await retry_forever(
                    functools.partial(write, self._engine, records),
                    max_backoff_s=self._settings.db_retry_max_backoff_s,
                )
                try:
                    await consumer.commit()
                except CommitFailedError:
                    log.warning("offset commit failed after a rebalance; events will repeat")
        finally:
            await consumer.stop()
