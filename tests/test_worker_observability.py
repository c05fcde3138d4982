"""The worker's /metrics, /readyz, JSON logs and graceful SIGTERM, on real services."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from punchline.devstack.broker import TansuBroker
from punchline.devstack.ports import free_port
from punchline.reconcile import reconcile
from tests.conftest import make_settings
from tests.support.books import count_transactions, duplicate_ledger_keys
from tests.support.factories import Tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool
from workers import metrics
from workers.app import write_through_shutdown

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


@pytest.fixture
def settings(database_url: str, broker: TansuBroker) -> Settings:
    """Overrides conftest's: these workers serve their health port."""
    return make_settings(database_url, broker.bootstrap, worker_health_port=free_port())


def _base(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.worker_health_port}"


async def _get(settings: Settings, path: str) -> httpx.Response | None:
    try:
        async with httpx.AsyncClient(base_url=_base(settings), timeout=5) as http:
            return await http.get(path)
    except httpx.TransportError:
        return None


async def _scrape(settings: Settings) -> dict[str, float]:
    response = await _get(settings, "/metrics")
    assert response is not None and response.status_code == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if not sample.labels:
                samples[sample.name] = sample.value
    return samples


def _read_logs(log_dir: Path) -> str:
    return "".join(p.read_text() for p in sorted(log_dir.glob("worker-*.log")))


async def _post_orders(
    client: httpx.AsyncClient, tenant: Tenant, ids: list[str], *, concurrency: int = 16
) -> None:
    queue = list(ids)

    async def poster() -> None:
        while queue:
            external_id = queue.pop()
            body = order_body(
                customer_code=tenant.customer_codes[hash(external_id) % 3], external_id=external_id
            )
            response = await client.post("/v1/orders", json=body, headers=tenant.headers)
            assert response.status_code == 202, response.text

    await asyncio.gather(*(poster() for _ in range(concurrency)))


async def test_metrics_readyz_and_json_logs(
    client: httpx.AsyncClient,
    tenant: Tenant,
    workers: WorkerPool,
    engine: AsyncEngine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUNCHLINE_LOG_JSON", "true")
    proc = workers.start()
    ready = await eventually(
        lambda: _get(settings, "/readyz"),
        lambda r: r is not None and r.status_code == 200,
        timeout_s=60,
        describe="/readyz 200",
    )
    assert ready is not None and ready.json()["status"] == "ready"
    healthz = await _get(settings, "/healthz")
    assert healthz is not None and healthz.json() == {"status": "ok"}

    await _post_orders(client, tenant, [f"obs-{i}" for i in range(40)])
    await eventually(
        lambda: count_transactions(engine, tenant.org_id),
        lambda n: n >= 40,
        timeout_s=90,
        describe="40 orders applied",
    )
    samples = await eventually(
        lambda: _scrape(settings),
        lambda s: s.get(f"{metrics.ORDERS_APPLIED}_total", 0) >= 40,
        timeout_s=10,
        describe="applied counter",
    )
    assert samples[f"{metrics.BATCH_SIZE}_count"] >= 1
    assert samples[f"{metrics.BATCH_SIZE}_sum"] >= 40
    assert samples[f"{metrics.BATCH_SECONDS}_count"] >= 1
    assert samples[f"{metrics.ACCEPT_TO_APPLIED_SECONDS}_count"] >= 40
    assert f"{metrics.DEAD_LETTERED}_total" in samples

    # An order-related log line: poison (an unknown org) whose customer ref is an email.
    email = f"leak-{uuid.uuid4().hex[:8]}@example.com"
    unknown_org, external_id = uuid.uuid4(), f"poison-{uuid.uuid4().hex[:8]}"
    event = {
        "schema_version": 1,
        "kind": "order",
        "event_id": str(uuid.uuid4()),
        "org_id": str(unknown_org),
        "external_id": external_id,
        "customer": {"type": "email", "value": email},
        "accepted_at": datetime.now(UTC).isoformat(),
        "order": order_body(customer_code="ABCDEF12", external_id=external_id),
    }
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.ingest_topic, orjson.dumps(event), key=f"{unknown_org}:email:{email}".encode()
        )
    finally:
        await producer.stop()
    await eventually(
        lambda: _scrape(settings),
        lambda s: s.get(f"{metrics.DEAD_LETTERED}_total", 0) >= 1,
        timeout_s=60,
        describe="poison dead-lettered",
    )
    workers.stop(proc)
    assert proc.returncode == 0, workers.logs()

    text = _read_logs(workers.log_dir)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    entries = []
    for line in lines:
        try:
            entries.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line!r}")
    letters = [e for e in entries if e.get("msg") == "dead-lettered message"]
    assert letters, text[-3000:]
    assert letters[0]["external_id"] == external_id
    assert letters[0]["org_id"] == str(unknown_org)
    assert email not in text
    assert tenant.key not in text


async def test_readyz_is_503_while_the_database_is_unreachable(
    database_url: str, broker: TansuBroker, tmp_path: Path
) -> None:
    dead_db = f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{free_port()}/none"
    settings = make_settings(dead_db, broker.bootstrap, worker_health_port=free_port())
    pool = WorkerPool(settings, log_dir=str(tmp_path))
    try:
        pool.start()
        response = await eventually(
            lambda: _get(settings, "/readyz"),
            lambda r: r is not None,
            timeout_s=60,
            describe="/readyz answers",
        )
        assert response is not None and response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "not ready"
        assert body["database"] != "ok"
    finally:
        pool.stop_all()


async def test_sigterm_mid_stream_commits_then_exits_and_nothing_is_lost_or_doubled(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    first = workers.start()
    ids = [f"term-{i}" for i in range(1500)]
    posting = asyncio.create_task(_post_orders(client, tenant, ids))
    await eventually(
        lambda: count_transactions(engine, tenant.org_id),
        lambda n: n >= 100,
        timeout_s=120,
        interval_s=0.05,
        describe="the stream is flowing",
    )
    first.send_signal(signal.SIGTERM)
    returncode = await asyncio.to_thread(first.wait, 60)
    assert returncode == 0, workers.logs()
    assert "unrecoverable" not in workers.logs()
    await posting
    stopped_at = await count_transactions(engine, tenant.org_id)

    workers.start()
    await eventually(
        lambda: count_transactions(engine, tenant.org_id),
        lambda n: n >= len(ids),
        timeout_s=180,
        describe="every accepted order applied after the restart",
    )
    await asyncio.sleep(1.0)  # anything doubled would show up now
    assert await count_transactions(engine, tenant.org_id) == len(ids)
    assert await count_transactions(engine, tenant.org_id, "applied") == len(ids)
    assert await duplicate_ledger_keys(engine, tenant.org_id) == 0
    report = await reconcile(engine, org_id=tenant.org_id)
    assert report.ok, report.failed
    assert stopped_at <= len(ids)


async def test_sigterm_during_a_slow_write_waits_for_its_commit(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                CREATE OR REPLACE FUNCTION slow_insert() RETURNS trigger AS $$
                BEGIN
                  IF NEW.external_id LIKE 'slow-%' THEN PERFORM pg_sleep(3); END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER slow_insert BEFORE INSERT ON transactions"
                " FOR EACH ROW EXECUTE FUNCTION slow_insert()"
            )
        )
    try:
        proc = workers.start()
        body = order_body(customer_code=tenant.customer_codes[0], external_id="slow-1")
        response = await client.post("/v1/orders", json=body, headers=tenant.headers)
        assert response.status_code == 202, response.text

        async def sleeping() -> int:
            async with engine.connect() as conn:
                query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                return int((await conn.execute(text(query))).scalar_one())

        await eventually(sleeping, lambda n: n > 0, timeout_s=90, interval_s=0.05)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 60) == 0, workers.logs()
        assert await count_transactions(engine, tenant.org_id, "applied") == 1, workers.logs()
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER IF EXISTS slow_insert ON transactions"))
            await conn.execute(text("DROP FUNCTION IF EXISTS slow_insert()"))


async def test_a_write_in_progress_outlives_the_cancellation() -> None:
    committed = asyncio.Event()
    started = asyncio.Event()

    async def slow_write() -> None:
        started.set()
        await asyncio.sleep(0.2)
        committed.set()

    agent = asyncio.create_task(write_through_shutdown(slow_write))
    await started.wait()
    agent.cancel()
    with pytest.raises(asyncio.CancelledError):
        await agent
    assert committed.is_set()


async def test_lag_gauge_drops_revoked_partitions() -> None:
    metrics.set_lag({0: 5, 1: None, 2: 7})
    metrics.set_lag({2: 3})
    values: dict[str, Any] = {
        s.labels["partition"]: s.value
        for f in text_string_to_metric_families(metrics.render()[0].decode())
        if f.name == metrics.CONSUMER_LAG
        for s in f.samples
    }
    assert values == {"2": 3.0}
