"""A failed DB write is redelivered, never skipped; poison goes to the DLQ."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.support.books import count_transactions, ledger_mismatches, points_total
from tests.support.factories import Tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow, pytest.mark.fault]


async def _install_failing_trigger(
    engine: AsyncEngine, name: str, sqlstate: str, times: int
) -> None:
    """Make inserts of `fail-*` external_ids fail `times` times (sequences do not roll back)."""
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {name}_seq"))
        await conn.execute(
            text(
                f"""
                CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
                BEGIN
                  IF NEW.external_id LIKE 'fail-%' AND nextval('{name}_seq') <= {times} THEN
                    RAISE EXCEPTION 'injected failure' USING ERRCODE = '{sqlstate}';
                  END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON transactions"
                f" FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )


async def _drop_trigger(engine: AsyncEngine, name: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON transactions"))
        await conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))
        await conn.execute(text(f"DROP SEQUENCE IF EXISTS {name}_seq"))


async def test_transient_db_failure_is_retried_and_nothing_is_skipped(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    await _install_failing_trigger(engine, "fail_transient", "40001", times=4)
    try:
        workers.start()
        bodies = [
            order_body(
                customer_code=tenant.customer_codes[i % 3],
                external_id=("fail-" if i % 10 == 0 else "ok-") + str(i),
            )
            for i in range(200)
        ]
        for body in bodies:
            assert (
                await client.post("/v1/orders", json=body, headers=tenant.headers)
            ).status_code == 202
        await eventually(
            lambda: count_transactions(engine, tenant.org_id),
            lambda n: n >= 200,
            timeout_s=120,
            describe="all 200 applied despite failures",
        )
        assert await count_transactions(engine, tenant.org_id, "applied") == 200
        assert await points_total(engine, tenant.org_id) == 200 * 11
        assert await ledger_mismatches(engine, tenant.org_id) == []
    finally:
        await _drop_trigger(engine, "fail_transient")


async def test_fatal_db_failure_stops_the_worker_and_the_batch_is_redelivered(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    await _install_failing_trigger(engine, "fail_fatal", "P0001", times=1_000_000)
    try:
        worker = workers.start()
        bodies = [
            order_body(customer_code=tenant.customer_codes[0], external_id=f"fail-{i}")
            for i in range(20)
        ]
        for body in bodies:
            assert (
                await client.post("/v1/orders", json=body, headers=tenant.headers)
            ).status_code == 202
        # The worker must stop loudly rather than acknowledge a batch it could not write.
        for _ in range(600):
            if worker.poll() is not None:
                break
            await asyncio.sleep(0.2)
        assert worker.poll() == 70, workers.logs()
        assert await count_transactions(engine, tenant.org_id) == 0
    finally:
        await _drop_trigger(engine, "fail_fatal")
    workers.start()
    await eventually(
        lambda: count_transactions(engine, tenant.org_id),
        lambda n: n >= 20,
        timeout_s=120,
        describe="the refused batch redelivered to a new worker",
    )
    assert await count_transactions(engine, tenant.org_id, "applied") == 20
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_poison_goes_to_the_dlq_and_the_next_good_message_is_applied(
    client: httpx.AsyncClient,
    tenant: Tenant,
    workers: WorkerPool,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    workers.start()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.ingest_topic, b"{not json", key=b"x")
        await producer.send_and_wait(
            settings.ingest_topic, orjson.dumps({"schema_version": 99, "kind": "order"}), key=b"x"
        )
        await producer.send_and_wait(
            settings.ingest_topic,
            orjson.dumps(
                {
                    "schema_version": 1,
                    "kind": "order",
                    "event_id": "6f1c1c1e-8d5b-4f0e-9d51-2f6a8f1c0b11",
                    "org_id": "00000000-0000-4000-8000-000000000000",
                    "external_id": "ghost-org",
                    "customer": {"type": "code", "value": "ABCDEF12"},
                    "accepted_at": "2026-11-02T09:30:00+00:00",
                    "order": order_body(customer_code="ABCDEF12", external_id="ghost-org"),
                }
            ),
            key=b"x",
        )
    finally:
        await producer.stop()
    good = order_body(customer_code=tenant.customer_codes[0], external_id="after-poison")
    assert (await client.post("/v1/orders", json=good, headers=tenant.headers)).status_code == 202
    await eventually(
        lambda: count_transactions(engine, tenant.org_id, "applied"),
        lambda n: n >= 1,
        timeout_s=90,
        describe="the good message after the poison applied",
    )

    consumer = AIOKafkaConsumer(
        settings.dlq_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    reasons: list[str] = []
    try:
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                reasons.extend(orjson.loads(r.value)["reason"] for r in records)
            if len(reasons) >= 3:
                break
    finally:
        await consumer.stop()
    assert len(reasons) == 3, reasons
    assert any("invalid JSON" in r for r in reasons)
    assert any("schema_version" in r for r in reasons)
    assert any("unknown org" in r for r in reasons)
