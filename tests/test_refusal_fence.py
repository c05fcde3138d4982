"""The refusal fence: a 503 from the edge is final, even if the broker delivers later.

The SIGSTOP fault tests (tests/test_faults.py) show it end to end; these pin down
each side on real Postgres, a real broker and a real worker process:
- the worker skips an event the edge refused, and applies the client's retry;
- the edge does not refuse an event a worker already consumed, and says so;
- a producer that times out against a stopped broker fences exactly what it sent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.producer import BrokerUnavailable, EventProducer
from ingest_api.refusal_fence import RefusalFence
from ingest_api.routes.orders import order_event
from ingest_api.routes.orders_batch import _refused_unless_consumed
from punchline.config import Settings
from punchline.devstack.broker import TansuBroker
from schemas.events import IngestEvent
from schemas.orders import OrderIn
from tests.support.factories import Tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool
from workers.topics import ensure_topics

pytestmark = pytest.mark.slow


def _event(tenant: Tenant, external_id: str) -> IngestEvent:
    body = order_body(customer_code=tenant.customer_codes[0], external_id=external_id)
    return order_event(OrderIn.model_validate(body), tenant.org_id, datetime.now(UTC))


async def _produce(settings: Settings, events: list[IngestEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for e in events:
            value = orjson.dumps(e.model_dump(mode="json"))
            await producer.send_and_wait(settings.ingest_topic, value, key=e.key)
    finally:
        await producer.stop()


async def _applied(engine: AsyncEngine, org_id: uuid.UUID) -> dict[str, uuid.UUID]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT external_id, event_id FROM transactions"
                " WHERE org_id = :o AND kind = 'order' AND status = 'applied'"
            ),
            {"o": org_id},
        )
        return {r.external_id: r.event_id for r in rows}


async def _refused_ids(engine: AsyncEngine) -> set[uuid.UUID]:
    async with engine.connect() as conn:
        return {r.event_id for r in await conn.execute(text("SELECT event_id FROM refused_events"))}


async def _refuse(engine: AsyncEngine, events: list[IngestEvent]) -> set[uuid.UUID]:
    return await RefusalFence(engine, lock_timeout_s=2.0).refuse(events)


async def test_worker_skips_a_refused_event_and_applies_the_clients_retry(
    settings: Settings, tenant: Tenant, engine: AsyncEngine, workers: WorkerPool
) -> None:
    refused = _event(tenant, "fence-refused")
    abandoned = _event(tenant, "fence-abandoned")
    good = _event(tenant, "fence-good")
    assert await _refuse(engine, [refused, abandoned]) == set()  # nothing consumed yet

    # The broker delivers the refused events after all (a resend), then a good one.
    await _produce(settings, [refused, abandoned, good])
    workers.start()
    await eventually(
        lambda: _applied(engine, tenant.org_id),
        lambda applied: "fence-good" in applied,
        timeout_s=60,
        describe="the good order after the refused ones is applied",
    )
    applied = await _applied(engine, tenant.org_id)
    assert "fence-refused" not in applied and "fence-abandoned" not in applied

    # The client retries the first one with the same external_id: a new event, applied once.
    retry = _event(tenant, "fence-refused")
    await _produce(settings, [retry])
    applied = await eventually(
        lambda: _applied(engine, tenant.org_id),
        lambda applied: "fence-refused" in applied,
        timeout_s=60,
        describe="the client's retry is applied",
    )
    assert applied["fence-refused"] == retry.event_id
    assert "fence-abandoned" not in applied


async def test_edge_does_not_refuse_what_a_worker_already_consumed(
    settings: Settings, tenant: Tenant, engine: AsyncEngine, workers: WorkerPool
) -> None:
    consumed = _event(tenant, "fence-consumed")
    await _produce(settings, [consumed])
    workers.start()
    await eventually(
        lambda: _applied(engine, tenant.org_id),
        lambda applied: "fence-consumed" in applied,
        timeout_s=60,
        describe="the order is applied before the edge gives up on it",
    )
    late = _event(tenant, "fence-late")
    assert await _refuse(engine, [consumed, late]) == {consumed.event_id}
    refused = await _refused_ids(engine)
    assert late.event_id in refused
    assert consumed.event_id not in refused


async def test_producer_timing_out_on_a_stopped_broker_fences_what_it_sent(
    database_url: str, tenant: Tenant, engine: AsyncEngine, tmp_path: Path
) -> None:
    from tests.conftest import make_settings

    with TansuBroker().start() as own_broker:
        settings = make_settings(database_url, own_broker.bootstrap, produce_timeout_s=1.0)
        await ensure_topics(settings)
        producer = EventProducer(settings, fence=RefusalFence(engine, lock_timeout_s=1.0))
        await producer.start()
        pool = WorkerPool(settings, log_dir=str(tmp_path))
        try:
            first = _event(tenant, "fence-p-first")
            await producer.send_events([first])
            pool.start()
            await eventually(
                lambda: _applied(engine, tenant.org_id),
                lambda applied: "fence-p-first" in applied,
                timeout_s=60,
                describe="the first order is applied",
            )
            pool.stop_all()

            own_broker.pause()
            try:
                # All consumed already: the produce failed, but the truth is "accepted".
                await producer.send_events([first])
                lost = _event(tenant, "fence-p-lost")
                with pytest.raises(BrokerUnavailable) as refusal:
                    await producer.send_events([first, lost])
                assert refusal.value.consumed == {first.event_id}
            finally:
                own_broker.resume()
            assert lost.event_id in await _refused_ids(engine)

            # Whatever aiokafka still held is delivered now; the worker refuses it.
            canary = _event(tenant, "fence-p-canary")
            await producer.send_events([canary])
            pool.start()
            applied = await eventually(
                lambda: _applied(engine, tenant.org_id),
                lambda applied: "fence-p-canary" in applied,
                timeout_s=60,
                describe="the order produced after the outage is applied",
            )
            assert "fence-p-lost" not in applied
        finally:
            pool.stop_all()
            await producer.stop()


def test_a_batch_reports_consumed_items_accepted_and_the_rest_refused() -> None:
    consumed, refused = uuid.uuid4(), uuid.uuid4()

    def accepted(index: int, event_id: uuid.UUID) -> dict[str, Any]:
        return {
            "index": index,
            "external_id": f"o{index}",
            "status": "accepted",
            "event_id": str(event_id),
            "status_url": "/v1/transactions/o",
        }

    invalid = {"index": 2, "status": "rejected", "error": "validation_error", "details": []}
    results = [
        _refused_unless_consumed(r, {consumed})
        for r in (accepted(0, consumed), accepted(1, refused), invalid)
    ]
    assert results[0]["status"] == "accepted"
    assert results[1]["status"] == "rejected" and results[1]["error"] == "broker_unavailable"
    assert results[1]["external_id"] == "o1"
    assert results[2] is invalid
