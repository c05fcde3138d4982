"""The outbox relay: every row reaches ``punchline.events.v1``, in order per customer,
at least once, with its stable event id; several relays may run at once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from punchline.db.repositories import domain_events, outbox
from tests.support.factories import Tenant, customer_id
from tests.support.polling import eventually
from workers.outbox_relay import OutboxRelay, new_producer
from workers.topics import ensure_topics

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def relay_settings(settings: Settings) -> Settings:
    tuned = settings.model_copy(update={"relay_batch_size": 7, "relay_poll_interval_s": 0.05})
    await ensure_topics(tuned)
    return tuned


@pytest.fixture
async def producer(relay_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = new_producer(relay_settings)
    await p.start()
    yield p
    await p.stop()


@contextlib.asynccontextmanager
async def running(*relays: OutboxRelay) -> AsyncIterator[None]:
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stopping)) for r in relays]
    try:
        yield
    finally:
        stopping.set()
        await asyncio.gather(*tasks)


async def write_events(
    engine: AsyncEngine, tenant: Tenant, count: int
) -> list[tuple[int, uuid.UUID]]:
    """``count`` events spread over the tenant's customers; (customer_id, event_id) in order."""
    ids = [await customer_id(engine, org_id=tenant.org_id, code=c) for c in tenant.customer_codes]
    written = []
    async with engine.begin() as conn:
        for n in range(count):
            cid = ids[n % len(ids)]
            event_id = await domain_events.add(
                conn,
                org_id=tenant.org_id,
                customer_id=cid,
                event_type="points.adjusted",
                payload={"n": n},
            )
            written.append((cid, event_id))
    return written


async def read_topic(
    settings: Settings, org_id: uuid.UUID, expect: int
) -> list[tuple[bytes, dict]]:
    """Every message of the org on the events topic, in partition order (key, event)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(settings.events_topic, p) for p in range(settings.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        found: list[tuple[bytes, dict]] = []

        async def poll() -> int:
            batches = await consumer.getmany(timeout_ms=200)
            for tp in sorted(batches, key=lambda t: t.partition):
                for record in batches[tp]:
                    event = orjson.loads(record.value)
                    if event["org_id"] == str(org_id):
                        found.append((record.key, event))
            return len(found)

        await eventually(poll, lambda n: n >= expect, timeout_s=60, describe="events on Kafka")
        return found
    finally:
        await consumer.stop()


async def unpublished(engine: AsyncEngine, org_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM outbox WHERE org_id = :o AND published_at IS NULL"),
                    {"o": org_id},
                )
            ).scalar_one()
        )


def per_key(messages: list[tuple[bytes, dict]]) -> dict[bytes, list[int]]:
    sequences: dict[bytes, list[int]] = defaultdict(list)
    for key, event in messages:
        sequences[key].append(event["sequence"])
    return sequences


async def test_publishes_every_row_in_order_per_customer(
    relay_settings: Settings, engine: AsyncEngine, tenant: Tenant, producer: AIOKafkaProducer
) -> None:
    written = await write_events(engine, tenant, 40)
    async with running(OutboxRelay(relay_settings, engine, producer)):
        messages = await read_topic(relay_settings, tenant.org_id, 40)
        await eventually(lambda: unpublished(engine, tenant.org_id), lambda n: n == 0)
    assert sorted(e["event_id"] for _, e in messages) == sorted(str(e) for _, e in written)
    event = messages[0][1]
    assert event["schema_version"] == 1 and event["event_type"] == "points.adjusted"
    assert event["customer_code"] in tenant.customer_codes
    keys = {key for key, _ in messages}
    assert keys == {f"{tenant.org_id}:{cid}".encode() for cid, _ in written}
    for sequence in per_key(messages).values():
        assert sequence == sorted(sequence)


async def test_two_relays_keep_each_customers_order(
    relay_settings: Settings, engine: AsyncEngine, tenant: Tenant, producer: AIOKafkaProducer
) -> None:
    await write_events(engine, tenant, 300)
    other = new_producer(relay_settings)
    await other.start()
    try:
        first = OutboxRelay(relay_settings, engine, producer)
        second = OutboxRelay(relay_settings, engine, other)
        async with running(first, second):
            messages = await read_topic(relay_settings, tenant.org_id, 300)
            await eventually(lambda: unpublished(engine, tenant.org_id), lambda n: n == 0)
    finally:
        await other.stop()
    assert len({e["event_id"] for _, e in messages}) == 300
    for sequence in per_key(messages).values():
        assert sequence == sorted(sequence)


async def test_a_customer_waits_for_its_older_row_held_by_another_relay(
    relay_settings: Settings, engine: AsyncEngine, tenant: Tenant, producer: AIOKafkaProducer
) -> None:
    written = await write_events(engine, tenant, 9)  # customers c0, c1, c2, c0, c1, …
    held_customer = written[0][0]
    relay = OutboxRelay(
        relay_settings.model_copy(update={"relay_batch_size": 500}), engine, producer
    )
    async with engine.connect() as other_relay:
        transaction = await other_relay.begin()
        claimed = await outbox.claim(other_relay, limit=1)  # holds c0's oldest row
        assert [row.event_id for row in claimed] == [written[0][1]]
        # The first relay may publish other customers, but nothing of c0.
        while await relay.publish_once():
            pass
        async with engine.connect() as conn:
            left = {
                r.event_id
                for r in await conn.execute(
                    text("SELECT event_id FROM outbox WHERE org_id = :o AND published_at IS NULL"),
                    {"o": tenant.org_id},
                )
            }
        assert left == {e for c, e in written if c == held_customer}
        await transaction.rollback()  # the other relay dies without publishing
    while await relay.publish_once():
        pass
    messages = await read_topic(relay_settings, tenant.org_id, 9)
    c0_key = f"{tenant.org_id}:{held_customer}".encode()
    assert per_key(messages)[c0_key] == sorted(per_key(messages)[c0_key])
    assert await unpublished(engine, tenant.org_id) == 0


async def test_a_crash_after_the_acks_publishes_again_with_the_same_event_id(
    relay_settings: Settings,
    engine: AsyncEngine,
    tenant: Tenant,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = await write_events(engine, tenant, 3)
    relay = OutboxRelay(relay_settings, engine, producer)
    real_mark = outbox.mark_published

    async def crash(*args: object, **kwargs: object) -> None:
        raise ConnectionError("relay died before marking the rows published")

    monkeypatch.setattr(outbox, "mark_published", crash)
    with pytest.raises(ConnectionError):
        await relay.publish_once()
    assert await unpublished(engine, tenant.org_id) == 3
    monkeypatch.setattr(outbox, "mark_published", real_mark)
    while await relay.publish_once():
        pass
    messages = await read_topic(relay_settings, tenant.org_id, 6)
    ids = [e["event_id"] for _, e in messages]
    assert sorted(ids) == sorted(str(e) for _, e in written for _ in range(2))
    assert await unpublished(engine, tenant.org_id) == 0
