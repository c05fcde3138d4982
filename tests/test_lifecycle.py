"""Cancel, delete and refund through Kafka: reversal, parking, orphans, policies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.conftest import api_client, make_settings
from tests.support.books import ledger_mismatches
from tests.support.factories import Tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

LINES = [
    {"line_ref": "a", "sku": "CAP", "name": "Cappuccino", "quantity": 2, "unit_price_cents": 350},
    {"line_ref": "b", "sku": "CAKE", "name": "Cake", "quantity": 1, "unit_price_cents": 450},
    {"line_ref": "c", "sku": "TEA", "name": "Tea", "quantity": 3, "unit_price_cents": 300},
]  # 700 + 450 + 900 = 2050 cents -> 20 points at 1 pt / 100 c


async def _settled(client: httpx.AsyncClient, tenant: Tenant, url: str) -> dict[str, Any]:
    async def status() -> dict[str, Any]:
        return (await client.get(url, headers=tenant.headers)).json()  # type: ignore[no-any-return]

    return await eventually(
        status, lambda s: s["status"] not in ("pending", "parked"), timeout_s=90, describe=url
    )


async def _post(client: httpx.AsyncClient, tenant: Tenant, path: str, body: Any) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def _points(engine: AsyncEngine, code: str) -> int:
    async with engine.connect() as conn:
        value = (
            await conn.execute(
                text(
                    "SELECT COALESCE(sum(w.balance), 0) FROM wallets w JOIN customers c"
                    " ON c.id = w.customer_id WHERE c.code = :code AND w.asset = 'points'"
                ),
                {"code": code},
            )
        ).scalar_one()
    return int(value)


async def test_cancel_reverses_the_order_and_shows_history(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    code = tenant.customer_codes[0]
    order = await _post(
        client, tenant, "/v1/orders", order_body(customer_code=code, external_id="c-1", lines=LINES)
    )
    assert (await _settled(client, tenant, order["status_url"]))["points"] == 20
    cancel = await _post(client, tenant, "/v1/orders/c-1/cancel", {})  # customer from the order
    done = await _settled(client, tenant, cancel["status_url"])
    assert (done["status"], done["points"]) == ("applied", -20)
    status = (await client.get("/v1/transactions/c-1", headers=tenant.headers)).json()
    assert status["status"] == "reversed"
    assert status["reversed_points"] == 20
    assert [h["kind"] for h in status["history"]] == ["cancel"]
    assert await _points(engine, code) == 0
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_partial_refunds_are_proportional_idempotent_and_bounded(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    code = tenant.customer_codes[1]
    order = await _post(
        client, tenant, "/v1/orders", order_body(customer_code=code, external_id="r-1", lines=LINES)
    )
    await _settled(client, tenant, order["status_url"])
    refund = {"refund_id": "rf-1", "lines": [{"line_ref": "c", "quantity": 3}]}
    first = await _post(client, tenant, "/v1/orders/r-1/refund", refund)
    assert (await _settled(client, tenant, first["status_url"]))["points"] == -9
    again = await _post(client, tenant, "/v1/orders/r-1/refund", refund)
    assert (await _settled(client, tenant, again["status_url"]))["status"] == "duplicate"
    by_sku = await _post(
        client,
        tenant,
        "/v1/orders/r-1/refund",
        {"refund_id": "rf-2", "lines": [{"sku": "CAP", "quantity": 1}]},
    )
    assert (await _settled(client, tenant, by_sku["status_url"]))["points"] == -3
    too_much = await _post(
        client,
        tenant,
        "/v1/orders/r-1/refund",
        {"refund_id": "rf-3", "lines": [{"line_ref": "a", "quantity": 2}]},
    )
    rejected = await _settled(client, tenant, too_much["status_url"])
    assert (rejected["status"], rejected["error"]) == ("rejected", "refund_exceeds_order")
    status = (await client.get("/v1/transactions/r-1", headers=tenant.headers)).json()
    assert status["status"] == "partially_reversed"
    assert status["reversed_points"] == 12
    assert await _points(engine, code) == 20 - 12
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_a_cancel_before_its_order_is_parked_then_applied(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    code = tenant.customer_codes[2]
    customer = {"type": "code", "value": code}
    unknown = await client.post("/v1/orders/early-1/cancel", json={}, headers=tenant.headers)
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "customer_required"
    cancel = await _post(client, tenant, "/v1/orders/early-1/cancel", {"customer": customer})

    async def cancel_status() -> str:
        r = await client.get(cancel["status_url"], headers=tenant.headers)
        return str(r.json()["status"])

    assert await eventually(cancel_status, lambda s: s == "parked", timeout_s=90) == "parked"
    order = await _post(
        client,
        tenant,
        "/v1/orders",
        order_body(customer_code=code, external_id="early-1", lines=LINES),
    )
    applied = await _settled(client, tenant, order["status_url"])
    assert applied["status"] == "reversed"
    assert (await _settled(client, tenant, cancel["status_url"]))["points"] == -20
    assert await _points(engine, code) == 0
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_a_cancel_whose_order_never_comes_is_reported_orphaned(
    database_url: str, broker: Any, tenant: Tenant, tmp_path: Any
) -> None:
    settings: Settings = make_settings(
        database_url, broker.bootstrap, orphan_after_s=1.0, orphan_check_every_s=0.5
    )
    from workers.topics import ensure_topics

    await ensure_topics(settings)
    pool = WorkerPool(settings, log_dir=str(tmp_path))
    try:
        pool.start()
        async with api_client(settings) as client:
            customer = {"type": "code", "value": tenant.customer_codes[0]}
            cancel = await _post(
                client, tenant, "/v1/orders/never-1/cancel", {"customer": customer}
            )
            final = await _settled(client, tenant, cancel["status_url"])
            assert final["status"] == "orphaned"
    finally:
        pool.stop_all()


async def test_clawback_follows_the_negative_balance_policy(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    code = tenant.customer_codes[0]

    async def spend_everything(label: str) -> None:
        # A redeem as the synchronous path writes it: ledger and wallet together.
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "WITH c AS (SELECT id, org_id FROM customers WHERE code = :code),"
                    " w AS (UPDATE wallets SET balance = balance - 20 FROM c"
                    "  WHERE wallets.customer_id = c.id AND asset = 'points'"
                    "  RETURNING c.id, c.org_id)"
                    " INSERT INTO ledger_entries"
                    " (org_id, customer_id, asset, delta, kind, external_id)"
                    " SELECT org_id, id, 'points', -20, 'redeem', :label FROM w"
                ),
                {"code": code, "label": label},
            )

    order = await _post(
        client,
        tenant,
        "/v1/orders",
        order_body(customer_code=code, external_id="neg-1", lines=LINES),
    )
    await _settled(client, tenant, order["status_url"])
    await spend_everything("spend-1")
    clamp = await _post(client, tenant, "/v1/orders/neg-1/cancel", {})
    await _settled(client, tenant, clamp["status_url"])
    assert await _points(engine, code) == 0, "clamp_to_zero (the default) never goes below zero"
    async with engine.connect() as conn:
        reason = (
            await conn.execute(
                text(
                    "SELECT reason FROM ledger_entries WHERE org_id = :o AND kind = 'cancel'"
                    " AND external_id = 'neg-1'"
                ),
                {"o": tenant.org_id},
            )
        ).scalar_one()
    assert "clamped" in reason

    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE orgs SET negative_balance_policy = 'allow_negative' WHERE id = :o"),
            {"o": tenant.org_id},
        )
    order = await _post(
        client,
        tenant,
        "/v1/orders",
        order_body(customer_code=code, external_id="neg-2", lines=LINES),
    )
    await _settled(client, tenant, order["status_url"])
    await spend_everything("spend-2")
    allow = await _post(client, tenant, "/v1/orders/neg-2/delete", {})
    await _settled(client, tenant, allow["status_url"])
    assert await _points(engine, code) == -20
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_cancel_voids_the_unused_coupon_it_filled(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    rules = {
        "stamp_cards": [
            {
                "id": "coffee",
                "label": "Coffee card",
                "slots": 3,
                "earn": "item",
                "match": {"categories": ["drinks"]},
                "reward": {"name": "Free Coffee", "type": "product"},
            }
        ],
        "default_stamp_card": "coffee",
    }
    assert (
        await client.put("/v1/admin/rules", json=rules, headers=tenant.headers)
    ).status_code == 200
    workers.start()
    code = tenant.customer_codes[1]
    lines = [{"name": "Latte", "category": "drinks", "quantity": 4, "unit_price_cents": 300}]
    order = await _post(
        client, tenant, "/v1/orders", order_body(customer_code=code, external_id="v-1", lines=lines)
    )
    applied = await _settled(client, tenant, order["status_url"])
    assert len(applied["coupons"]) == 1
    cancel = await _post(client, tenant, "/v1/orders/v-1/cancel", {})
    await _settled(client, tenant, cancel["status_url"])
    async with engine.connect() as conn:
        status = (
            await conn.execute(
                text("SELECT status FROM coupons WHERE token = :t"),
                {"t": applied["coupons"][0]["qr_token"]},
            )
        ).scalar_one()
        stamps = (
            await conn.execute(
                text(
                    "SELECT balance FROM wallets w JOIN customers c ON c.id = w.customer_id"
                    " WHERE c.code = :code AND asset = 'stamps:coffee'"
                ),
                {"code": code},
            )
        ).scalar_one()
    assert status == "voided"
    assert stamps == 0
    assert await ledger_mismatches(engine, tenant.org_id) == []


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        pytest.param(
            "/v1/orders/x-1/refund",
            {"lines": [{"line_ref": "a", "quantity": 1}]},
            "validation_error",
            id="refund without id",
        ),
        pytest.param(
            "/v1/orders/x-1/refund",
            {"refund_id": "r", "lines": []},
            "validation_error",
            id="refund without lines",
        ),
        pytest.param(
            "/v1/orders/x-1/refund",
            {"refund_id": "r", "lines": [{"line_ref": "a", "quantity": 0}]},
            "validation_error",
            id="zero quantity",
        ),
        pytest.param(
            "/v1/orders/x-1/refund",
            {"refund_id": "r", "lines": [{"quantity": 1}]},
            "validation_error",
            id="unnamed line",
        ),
        pytest.param(
            "/v1/orders/x-1/refund",
            {"refund_id": "r", "lines": [{"line_ref": "a", "sku": "b", "quantity": 1}]},
            "validation_error",
            id="line named twice",
        ),
        pytest.param(
            "/v1/orders/x-1/cancel",
            {"customer": {"type": "code", "value": "nope"}},
            "validation_error",
            id="bad customer",
        ),
        pytest.param(
            "/v1/orders/x-1/cancel", {"surprise": True}, "validation_error", id="unknown field"
        ),
    ],
)
async def test_bad_lifecycle_requests(
    client: httpx.AsyncClient, tenant: Tenant, path: str, body: Any, code: str
) -> None:
    response = await client.post(path, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == code
