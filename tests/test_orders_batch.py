"""``POST /v1/orders:batch``: per-item validation, one produce, results in request order."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.routes.orders_batch import MAX_BATCH
from punchline.config import Settings
from tests.support.books import (
    count_transactions,
    duplicate_ledger_keys,
    ledger_mismatches,
    points_total,
)
from tests.support.factories import Tenant, create_key, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool

pytestmark = [pytest.mark.asyncio(loop_scope="session")]

BATCH = "/v1/orders:batch"


async def _settled(client: httpx.AsyncClient, tenant: Tenant, url: str) -> dict[str, Any]:
    async def status() -> dict[str, Any]:
        return (await client.get(url, headers=tenant.headers)).json()  # type: ignore[no-any-return]

    return await eventually(
        status, lambda s: s["status"] != "pending", timeout_s=90, describe=f"{url} settled"
    )


@pytest.mark.slow
async def test_mixed_batch_answers_per_item_in_order_and_applies_the_valid_ones_once(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    code_a, code_b = tenant.customer_codes[0], tenant.customer_codes[1]
    no_lines = order_body(customer_code=code_a, external_id="bad-lines") | {"lines": []}
    bad_code = order_body(customer_code="NOTHEX!!", external_id="bad-code")
    orders: list[Any] = [
        order_body(customer_code=code_a, external_id="good-1"),
        no_lines,
        42,
        order_body(customer_code=code_b, external_id="good-2"),
        bad_code,
    ]
    response = await client.post(BATCH, json={"orders": orders}, headers=tenant.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    results = body["results"]
    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "rejected",
        "accepted",
        "rejected",
    ]
    assert [r["external_id"] for r in results] == [
        "good-1",
        "bad-lines",
        None,
        "good-2",
        "bad-code",
    ]
    for rejected in (results[1], results[2], results[4]):
        assert rejected["error"] == "validation_error"
        assert rejected["details"] and all(d["message"] for d in rejected["details"])
    assert any(d["path"] == "lines" for d in results[1]["details"])
    assert any(d["path"].startswith("customer") for d in results[4]["details"])
    for accepted in (results[0], results[3]):
        assert accepted["event_id"] in accepted["status_url"]
        assert accepted["status_url"].startswith(f"/v1/transactions/{accepted['external_id']}?")

    for accepted in (results[0], results[3]):
        settled = await _settled(client, tenant, accepted["status_url"])
        assert settled["status"] == "applied", workers.logs()
        assert settled["points"] == 11
    assert await count_transactions(engine, tenant.org_id) == 2
    assert await points_total(engine, tenant.org_id) == 22
    assert await duplicate_ledger_keys(engine, tenant.org_id) == 0
    assert await ledger_mismatches(engine, tenant.org_id) == []


@pytest.mark.slow
async def test_duplicates_within_a_batch_apply_once_and_the_rest_read_duplicate(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    same = order_body(customer_code=tenant.customer_codes[0], external_id="twice-in-batch")
    response = await client.post(BATCH, json={"orders": [same] * 3}, headers=tenant.headers)
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted"] * 3
    assert len({r["event_id"] for r in results}) == 3

    statuses = [(await _settled(client, tenant, r["status_url"]))["status"] for r in results]
    # Same key, same partition, in request order: the first one produced is the one applied.
    assert statuses == ["applied", "duplicate", "duplicate"], workers.logs()
    assert await count_transactions(engine, tenant.org_id) == 1
    assert await points_total(engine, tenant.org_id) == 11


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(None, id="too many items"),
        pytest.param({"orders": {"external_id": "x"}}, id="orders not a list"),
        pytest.param({"orders": "x"}, id="orders a string"),
        pytest.param({"orders": []}, id="empty batch"),
        pytest.param({}, id="no orders"),
        pytest.param([], id="body a list"),
        pytest.param({"orders": [42], "extra": 1}, id="unknown field"),
    ],
)
async def test_a_malformed_batch_is_refused_whole(
    client: httpx.AsyncClient, tenant: Tenant, body: Any
) -> None:
    if body is None:
        one = order_body(customer_code=tenant.customer_codes[0])
        body = {"orders": [one | {"external_id": f"o-{i}"} for i in range(MAX_BATCH + 1)]}
    response = await client.post(BATCH, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert "results" not in response.json()


async def test_a_full_batch_of_1000_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    one = order_body(customer_code=tenant.customer_codes[0])
    body = {"orders": [one | {"external_id": f"full-{i}"} for i in range(MAX_BATCH)]}
    response = await client.post(BATCH, json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert len(results) == MAX_BATCH
    assert [r["index"] for r in results] == list(range(MAX_BATCH))
    assert {r["status"] for r in results} == {"accepted"}


async def test_a_batch_needs_a_pos_key(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = {"orders": [order_body(customer_code=tenant.customer_codes[0])]}
    response = await client.post(BATCH, json=body, headers={"X-Api-Key": "sk_live_" + "x" * 32})
    assert response.status_code == 401


async def test_a_batch_counts_once_against_the_earn_limit(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    key = await create_key(
        engine, org_id=tenant.org_id, scopes=["pos"], rate_limits={"earn": "2/minute"}
    )
    headers = {"X-Api-Key": key}
    one = order_body(customer_code=tenant.customer_codes[0])
    body = {"orders": [one | {"external_id": f"rl-{i}"} for i in range(5)]}
    first = await client.post(BATCH, json=body, headers=headers)
    second = await client.post(BATCH, json=body, headers=headers)
    assert (first.status_code, second.status_code) == (202, 202), second.text
    # The batch shares the earn group with POST /v1/orders.
    single = await client.post("/v1/orders", json=one, headers=headers)
    assert single.status_code == 429
    third = await client.post(BATCH, json=body, headers=headers)
    assert third.status_code == 429
    assert third.headers.get("Retry-After")


async def test_openapi_publishes_the_item_schema(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ref = spec["paths"][BATCH]["post"]["requestBody"]["content"]["application/json"]["schema"]
    batch = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]
    items = batch["properties"]["orders"]["items"]
    assert items.get("title") == "OrderIn" or items.get("$ref", "").endswith("/OrderIn")
    assert batch["properties"]["orders"]["maxItems"] == MAX_BATCH


@pytest.mark.slow
async def test_broker_down_answers_503_and_acknowledges_nothing(
    database_url: str, tenant: Tenant
) -> None:
    from punchline.devstack.broker import TansuBroker
    from tests.conftest import api_client, make_settings
    from workers.topics import ensure_topics

    with TansuBroker().start() as own_broker:
        settings: Settings = make_settings(database_url, own_broker.bootstrap)
        await ensure_topics(settings)
        async with api_client(settings) as api:
            code = tenant.customer_codes[0]
            ok = await api.post(
                BATCH, json={"orders": [order_body(customer_code=code)]}, headers=tenant.headers
            )
            assert ok.status_code == 202, ok.text
            own_broker.pause()
            try:
                body = {"orders": [order_body(customer_code=code) for _ in range(3)] + [42]}
                # A hang guard far above produce_timeout_s, never the source of the 503.
                down = await asyncio.wait_for(
                    api.post(BATCH, json=body, headers=tenant.headers), timeout=15
                )
            finally:
                own_broker.resume()
            assert down.status_code == 503, down.text
            assert down.json()["error"] == "broker_unavailable"
            assert "results" not in down.json()
            assert down.headers.get("Retry-After")
