"""HTTP → Kafka → faust worker → Postgres, on the real broker and real Postgres."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.support.books import (
    count_transactions,
    duplicate_ledger_keys,
    ledger_mismatches,
    points_total,
)
from tests.support.factories import Tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


async def _post_all(
    client: httpx.AsyncClient,
    tenant: Tenant,
    bodies: list[dict[str, object]],
    concurrency: int = 16,
) -> list[httpx.Response]:
    gate = asyncio.Semaphore(concurrency)

    async def post(body: dict[str, object]) -> httpx.Response:
        async with gate:
            return await client.post("/v1/orders", json=body, headers=tenant.headers)

    return await asyncio.gather(*(post(b) for b in bodies))


async def test_order_over_http_is_applied_with_points(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool
) -> None:
    workers.start()
    body = order_body(customer_code=tenant.customer_codes[0])
    response = await client.post("/v1/orders", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "pending"

    async def status() -> dict[str, object]:
        r = await client.get(accepted["status_url"], headers=tenant.headers)
        return r.json()  # type: ignore[no-any-return]

    result = await eventually(status, lambda s: s["status"] != "pending", timeout_s=90)
    assert result["status"] == "applied", workers.logs()
    # Default rules: 1 point per 100 cents, floor. 2 x 350 + 450 = 1150 cents.
    assert result["points"] == 11
    assert result["rules_applied"] and result["rules_applied"][0]["points"] == 11


async def test_prefer_wait_returns_the_applied_result(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool
) -> None:
    workers.start()
    warmup = order_body(customer_code=tenant.customer_codes[0])
    await client.post("/v1/orders", json=warmup, headers={**tenant.headers, "Prefer": "wait=10"})
    body = order_body(customer_code=tenant.customer_codes[1])

    async def waited() -> httpx.Response:
        body["external_id"] = f"wait-{secrets.token_hex(4)}"
        return await client.post(
            "/v1/orders", json=body, headers={**tenant.headers, "Prefer": "wait=10"}
        )

    response = await eventually(waited, lambda r: r.status_code == 200, timeout_s=90)
    assert response.json()["status"] == "applied"
    assert response.json()["points"] == 11


async def test_unknown_customer_is_rejected(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool
) -> None:
    workers.start()
    body = order_body(customer_code="00000000")
    accepted = (await client.post("/v1/orders", json=body, headers=tenant.headers)).json()

    async def status() -> dict[str, object]:
        return (await client.get(accepted["status_url"], headers=tenant.headers)).json()  # type: ignore[no-any-return]

    result = await eventually(status, lambda s: s["status"] != "pending", timeout_s=90)
    assert result["status"] == "rejected"
    assert result["error"] == "customer_not_found"


async def test_same_external_id_five_times_applies_once(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    body = order_body(customer_code=tenant.customer_codes[0], external_id="dup-1")
    responses = await _post_all(client, tenant, [body] * 5, concurrency=5)
    assert all(r.status_code == 202 for r in responses)
    urls = [r.json()["status_url"] for r in responses]

    async def statuses() -> list[str]:
        return [(await client.get(url, headers=tenant.headers)).json()["status"] for url in urls]

    final = await eventually(statuses, lambda s: "pending" not in s, timeout_s=90)
    assert sorted(final) == ["applied", "duplicate", "duplicate", "duplicate", "duplicate"]
    assert await points_total(engine, tenant.org_id) == 11
    assert await duplicate_ledger_keys(engine, tenant.org_id) == 0
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_two_thousand_orders_over_two_workers_apply_exactly_once(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    workers.start()
    bodies = [
        order_body(customer_code=tenant.customer_codes[i % 3], external_id=f"bulk-{i}")
        for i in range(2000)
    ]
    responses = await _post_all(client, tenant, bodies, concurrency=32)
    assert all(r.status_code == 202 for r in responses)
    await eventually(
        lambda: count_transactions(engine, tenant.org_id),
        lambda n: n >= 2000,
        timeout_s=180,
        describe="2000 orders applied",
    )
    assert await count_transactions(engine, tenant.org_id, "applied") == 2000
    assert await points_total(engine, tenant.org_id) == 2000 * 11
    assert await duplicate_ledger_keys(engine, tenant.org_id) == 0
    assert await ledger_mismatches(engine, tenant.org_id) == []


@pytest.mark.fault
async def test_sigkilled_worker_loses_nothing_and_counts_nothing_twice(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    first = workers.start()
    bodies = [
        order_body(customer_code=tenant.customer_codes[i % 3], external_id=f"kill-{i}")
        for i in range(3000)
    ]
    producing = asyncio.create_task(_post_all(client, tenant, bodies, concurrency=16))
    await eventually(
        lambda: count_transactions(engine, tenant.org_id),
        lambda n: n >= 300,
        timeout_s=120,
        describe="worker started applying",
    )
    workers.kill(first)
    killed_at = await count_transactions(engine, tenant.org_id)
    assert killed_at < 3000, "the kill must land mid-stream"
    workers.start()
    responses = await producing
    assert all(r.status_code == 202 for r in responses)
    await eventually(
        lambda: count_transactions(engine, tenant.org_id),
        lambda n: n >= 3000,
        timeout_s=180,
        describe="all orders applied after restart",
    )
    assert await count_transactions(engine, tenant.org_id, "applied") == 3000
    assert await points_total(engine, tenant.org_id) == 3000 * 11
    assert await duplicate_ledger_keys(engine, tenant.org_id) == 0
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_broker_down_answers_503_fast(database_url: str, tenant: Tenant) -> None:
    from punchline.devstack.broker import TansuBroker
    from tests.conftest import api_client, make_settings
    from workers.topics import ensure_topics

    with TansuBroker().start() as own_broker:
        settings: Settings = make_settings(database_url, own_broker.bootstrap)
        await ensure_topics(settings)
        async with api_client(settings) as api:
            body = order_body(customer_code=tenant.customer_codes[0])
            ok = await api.post("/v1/orders", json=body, headers=tenant.headers)
            assert ok.status_code == 202
            own_broker.pause()
            try:
                body = order_body(customer_code=tenant.customer_codes[0])
                # The hang guard is far above produce_timeout_s; a 503 can only come
                # from the edge's own bounded produce, never from this guard.
                down = await asyncio.wait_for(
                    api.post("/v1/orders", json=body, headers=tenant.headers), timeout=15
                )
            finally:
                own_broker.resume()
            assert down.status_code == 503
            assert down.json()["error"] == "broker_unavailable"
            assert down.headers.get("Retry-After")
