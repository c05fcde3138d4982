"""The worker writes domain events to the outbox and names sku-only lines from the catalogue."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import Tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


async def _applied(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> dict[str, Any]:
    accepted = (await client.post("/v1/orders", json=body, headers=tenant.headers)).json()

    async def status() -> dict[str, Any]:
        return (await client.get(accepted["status_url"], headers=tenant.headers)).json()  # type: ignore[no-any-return]

    return await eventually(status, lambda s: s["status"] != "pending", timeout_s=90)


async def test_domain_events_are_written_in_the_batch_transaction(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    rules = {
        "tiers": [
            {"name": "Bronze", "threshold": 0},
            {"name": "Silver", "threshold": 10, "multiplier": "1.25"},
        ],
        "stamp_cards": [
            {
                "id": "coffee",
                "label": "Coffee card",
                "slots": 2,
                "earn": "item",
                "match": {"categories": ["drinks"]},
                "reward": {"name": "Free Coffee", "type": "product"},
            }
        ],
    }
    assert (
        await client.put("/v1/admin/rules", json=rules, headers=tenant.headers)
    ).status_code == 200
    workers.start()
    lines = [{"name": "Latte", "category": "drinks", "quantity": 3, "unit_price_cents": 400}]
    result = await _applied(
        client,
        tenant,
        order_body(customer_code=tenant.customer_codes[0], external_id="ev-1", lines=lines),
    )
    assert result["points"] == 12
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_type, payload FROM outbox WHERE org_id = :o"
                    " AND payload->>'external_id' = 'ev-1' ORDER BY id"
                ),
                {"o": tenant.org_id},
            )
        ).all()
    kinds = [r.event_type for r in rows]
    assert kinds == ["points.earned", "coupon.issued", "stamps.earned", "tier.changed"]
    payloads = {r.event_type: r.payload for r in rows}
    assert payloads["points.earned"]["points"] == 12
    assert payloads["points.earned"]["customer_code"] == tenant.customer_codes[0]
    assert payloads["stamps.earned"] == {**payloads["stamps.earned"], "stamps": 3, "balance": 1}
    assert payloads["tier.changed"]["new"] == "Silver"
    assert payloads["coupon.issued"]["coupon"]["name"] == "Free Coffee"


async def test_sku_only_lines_are_named_from_the_catalogue_so_category_rules_apply(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO products (org_id, sku, name, category, price_cents)"
                " VALUES (:o, 'BEANS-1', 'House Beans', 'beans', 1200)"
            ),
            {"o": tenant.org_id},
        )
    rules = {
        "bonuses": [
            {
                "id": "beans",
                "label": "Beans x3",
                "kind": "multiplier",
                "multiplier": "3",
                "match": {"categories": ["beans"]},
            }
        ]
    }
    assert (
        await client.put("/v1/admin/rules", json=rules, headers=tenant.headers)
    ).status_code == 200
    workers.start()
    lines = [
        {"sku": "BEANS-1", "quantity": 1, "unit_price_cents": 1200},
        {"sku": "UNKNOWN-9", "quantity": 1, "unit_price_cents": 100},
    ]
    result = await _applied(
        client,
        tenant,
        order_body(customer_code=tenant.customer_codes[1], external_id="cat-1", lines=lines),
    )
    assert result["points"] == 12 * 3 + 1
    assert {r["rule_id"] for r in result["rules_applied"]} == {"base", "beans"}
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text(
                    "SELECT order_body FROM transactions"
                    " WHERE org_id = :o AND external_id = 'cat-1'"
                ),
                {"o": tenant.org_id},
            )
        ).scalar_one()
    assert [line["name"] for line in stored["lines"]] == ["House Beans", "UNKNOWN-9"]


async def test_a_line_needs_a_name_or_a_sku(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = order_body(
        customer_code=tenant.customer_codes[0], lines=[{"quantity": 1, "unit_price_cents": 100}]
    )
    response = await client.post("/v1/orders", json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_an_order_and_an_earn_may_share_an_external_id(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    from tests.support.books import ledger_mismatches

    workers.start()
    code = tenant.customer_codes[2]
    order = await _applied(client, tenant, order_body(customer_code=code, external_id="shared-1"))
    assert order["points"] == 11
    earn = await client.post(
        "/webhook/pos",
        json={"customer_code": code, "amount": 25, "card_type": "point", "external_id": "shared-1"},
        headers=tenant.headers,
    )
    assert earn.status_code == 200, earn.text
    assert earn.json()["data"]["points"] == 11 + 25
    assert await ledger_mismatches(engine, tenant.org_id) == []
    async with engine.connect() as conn:
        kinds = (
            (
                await conn.execute(
                    text(
                        "SELECT kind FROM ledger_entries WHERE org_id = :o"
                        " AND external_id = 'shared-1' ORDER BY kind"
                    ),
                    {"o": tenant.org_id},
                )
            )
            .scalars()
            .all()
        )
    assert kinds == ["earn", "order"]
