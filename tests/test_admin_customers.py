"""Merchant administration of customers: list, detail, edit, points adjustment, erasure."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.books import ledger_mismatches
from tests.support.factories import (
    Tenant,
    create_customer,
    create_key,
    create_tenant,
    credit,
    customer_id,
    outbox_events,
    row_counts,
    wallet_balance,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

BASE = "/v1/admin/customers"


@pytest.fixture
async def shop(engine: AsyncEngine) -> Tenant:
    """An org with five named customers and no others."""
    tenant = await create_tenant(engine, customers_count=0)
    people = [
        ("Ada Lovelace", "ada@example.com", "+353851234501", 40),
        ("Grace Hopper", "grace@example.com", "+353851234502", 10),
        ("Alan Turing", "alan@example.com", "+353851234503", 90),
        ("Edsger Dijkstra", "edsger@example.com", None, 0),
        ("Barbara Liskov", "barbara@example.com", "+353851234505", 25),
    ]
    for name, email, phone, points in people:
        code = await create_customer(
            engine, org_id=tenant.org_id, name=name, email=email, phone=phone
        )
        tenant.customer_codes.append(code)
        if points:
            await credit(engine, org_id=tenant.org_id, code=code, amount=points)
    return tenant


async def _names(client: httpx.AsyncClient, tenant: Tenant, **params: object) -> list[str]:
    response = await client.get(BASE, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["customers"]]


async def test_list_sorts_and_paginates(client: httpx.AsyncClient, shop: Tenant) -> None:
    response = await client.get(
        BASE, params={"sortBy": "name", "sortOrder": "asc", "limit": 2}, headers=shop.headers
    )
    body = response.json()
    assert body["pagination"] == {"page": 1, "limit": 2, "total": 5}
    assert [c["name"] for c in body["customers"]] == ["Ada Lovelace", "Alan Turing"]
    page2 = await _names(client, shop, sortBy="name", sortOrder="asc", limit=2, page=2)
    assert page2 == ["Barbara Liskov", "Edsger Dijkstra"]
    by_points = await _names(client, shop, sortBy="points", sortOrder="desc")
    assert by_points[:3] == ["Alan Turing", "Ada Lovelace", "Barbara Liskov"]
    first = body["customers"][0]
    assert first["email"] == "ada@example.com" and first["point_balance"] == 40


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        pytest.param("ALAN", ["Alan Turing"], id="name, any case"),
        pytest.param("grace@", ["Grace Hopper"], id="email"),
        pytest.param("1234505", ["Barbara Liskov"], id="phone digits"),
        pytest.param("zzz", [], id="nothing"),
        pytest.param("100%", [], id="like wildcards are literal"),
    ],
)
async def test_list_searches(
    client: httpx.AsyncClient, shop: Tenant, search: str, expected: list[str]
) -> None:
    assert await _names(client, shop, search=search, sortBy="name", sortOrder="asc") == expected


async def test_list_searches_by_code(client: httpx.AsyncClient, shop: Tenant) -> None:
    code = shop.customer_codes[3]
    assert await _names(client, shop, search=code.lower()) == ["Edsger Dijkstra"]


async def test_status_filter(client: httpx.AsyncClient, shop: Tenant) -> None:
    blocked = shop.customer_codes[1]
    patched = await client.patch(
        f"{BASE}/{blocked}", json={"status": "BLOCKED"}, headers=shop.headers
    )
    assert patched.status_code == 200, patched.text
    assert await _names(client, shop, statusFilter="BLOCKED") == ["Grace Hopper"]
    assert "Grace Hopper" not in await _names(client, shop, statusFilter="ACTIVE")
    erased = await client.delete(f"{BASE}/{shop.customer_codes[0]}", headers=shop.headers)
    assert erased.status_code == 200
    assert await _names(client, shop, statusFilter="ERASED") == [None]
    assert len(await _names(client, shop)) == 4  # erased customers leave the default list


async def test_detail_shows_history_newest_first(
    client: httpx.AsyncClient, shop: Tenant, engine: AsyncEngine
) -> None:
    code = shop.customer_codes[0]
    adjusted = await client.post(
        f"{BASE}/{code}/points", json={"points": -15, "reason": "wrong till"}, headers=shop.headers
    )
    assert adjusted.status_code == 200, adjusted.text
    response = await client.get(f"{BASE}/{code.lower()}", headers=shop.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["customer"]["customer_code"] == code
    assert body["total_points"] == 25
    assert [(h["kind"], h["delta"]) for h in body["history"]] == [
        ("adjustment", -15),
        ("adjust", 40),
    ]
    assert body["history"][0]["reason"] == "wrong till"
    assert body["history"][0]["actor"].startswith("key:")


async def test_unknown_customer_is_404(client: httpx.AsyncClient, shop: Tenant) -> None:
    for method, path, body in [
        ("GET", f"{BASE}/ABCDEF12", None),
        ("PATCH", f"{BASE}/ABCDEF12", {"name": "x"}),
        ("POST", f"{BASE}/ABCDEF12/points", {"points": 1, "reason": "x"}),
        ("DELETE", f"{BASE}/ABCDEF12", None),
    ]:
        response = await client.request(method, path, json=body, headers=shop.headers)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["error"] == "customer_not_found"


async def test_patch_edits_name_phone_and_status(client: httpx.AsyncClient, shop: Tenant) -> None:
    code = shop.customer_codes[3]
    response = await client.patch(
        f"{BASE}/{code}",
        json={"name": "E. W. Dijkstra", "phone": "085 123 4599", "status": "BLOCKED"},
        headers=shop.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["phone"], body["status"]) == (
        "E. W. Dijkstra",
        "+353851234599",
        "BLOCKED",
    )
    pos_view = await client.get(f"/v1/customers/{code}", headers=shop.headers)
    assert pos_view.json()["status"] == "BLOCKED"
    cleared = await client.patch(
        f"{BASE}/{code}", json={"name": None, "status": "ACTIVE"}, headers=shop.headers
    )
    assert (cleared.json()["name"], cleared.json()["status"]) == (None, "ACTIVE")


async def test_adjustment_moves_wallet_and_ledger_together(
    client: httpx.AsyncClient, shop: Tenant, engine: AsyncEngine
) -> None:
    code = shop.customer_codes[3]  # no wallet yet
    up = await client.post(
        f"{BASE}/{code}/points",
        json={"points": 50, "reason": "goodwill", "external_id": "adj-1"},
        headers=shop.headers,
    )
    assert up.status_code == 200, up.text
    assert up.json()["new_balance"] == 50
    down = await client.post(
        f"{BASE}/{code}/points", json={"points": -20, "reason": "fix"}, headers=shop.headers
    )
    body = down.json()
    assert (body["adjustment"], body["new_balance"], body["replayed"]) == (-20, 30, False)
    assert body["external_id"].startswith("adj-")
    assert await wallet_balance(engine, org_id=shop.org_id, code=code, asset="points") == 30
    assert await ledger_mismatches(engine, shop.org_id) == []
    events = await outbox_events(engine, org_id=shop.org_id, event_type="points.adjusted")
    assert [(e["payload"]["adjustment"], e["payload"]["balance"]) for e in events] == [
        (50, 50),
        (-20, 30),
    ]
    assert events[0]["payload"]["reason"] == "goodwill"
    assert events[0]["payload"]["actor"] == body["actor"]


async def test_adjustment_never_overdraws(
    client: httpx.AsyncClient, shop: Tenant, engine: AsyncEngine
) -> None:
    code = shop.customer_codes[1]  # 10 points
    before = await row_counts(engine, shop.org_id)
    response = await client.post(
        f"{BASE}/{code}/points", json={"points": -11, "reason": "too much"}, headers=shop.headers
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "insufficient_balance",
        "message": "The adjustment would take the balance below zero.",
        "balance": 10,
    }
    assert await row_counts(engine, shop.org_id) == before


async def test_adjustment_may_go_negative_when_the_org_allows_it(
    client: httpx.AsyncClient, shop: Tenant, engine: AsyncEngine
) -> None:
    policy = await client.patch(
        "/v1/admin/org", json={"negative_balance_policy": "allow_negative"}, headers=shop.headers
    )
    assert policy.status_code == 200
    code = shop.customer_codes[1]
    response = await client.post(
        f"{BASE}/{code}/points", json={"points": -25, "reason": "refund"}, headers=shop.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["new_balance"] == -15
    assert await ledger_mismatches(engine, shop.org_id) == []


async def test_adjustment_is_idempotent_on_external_id(
    client: httpx.AsyncClient, shop: Tenant, engine: AsyncEngine
) -> None:
    code = shop.customer_codes[2]  # 90 points
    body = {"points": -40, "reason": "voided sale", "external_id": "fix-7"}
    first = await client.post(f"{BASE}/{code}/points", json=body, headers=shop.headers)
    more = await client.post(
        f"{BASE}/{code}/points", json={"points": 5, "reason": "later"}, headers=shop.headers
    )
    assert more.json()["new_balance"] == 55
    again = await client.post(f"{BASE}/{code}/points", json=body, headers=shop.headers)
    assert again.status_code == 200
    assert again.json() == {**first.json(), "replayed": True}  # the first answer, balance 50
    assert await wallet_balance(engine, org_id=shop.org_id, code=code, asset="points") == 55
    changed = await client.post(
        f"{BASE}/{code}/points", json={**body, "points": -41}, headers=shop.headers
    )
    assert changed.status_code == 409
    assert changed.json()["error"] == "idempotency_conflict"
    other = await client.post(
        f"{BASE}/{shop.customer_codes[0]}/points", json=body, headers=shop.headers
    )
    assert other.status_code == 409


async def test_concurrent_debits_never_overdraw(
    client: httpx.AsyncClient, shop: Tenant, engine: AsyncEngine
) -> None:
    code = shop.customer_codes[2]  # 90 points

    async def debit() -> int:
        response = await client.post(
            f"{BASE}/{code}/points", json={"points": -10, "reason": "burst"}, headers=shop.headers
        )
        return response.status_code

    statuses = await asyncio.gather(*(debit() for _ in range(15)))
    assert sorted(statuses) == [200] * 9 + [422] * 6
    assert await wallet_balance(engine, org_id=shop.org_id, code=code, asset="points") == 0
    assert await ledger_mismatches(engine, shop.org_id) == []


async def _ledger_total(engine: AsyncEngine, org_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT COALESCE(sum(delta), 0) FROM ledger_entries WHERE org_id = :o"),
                    {"o": org_id},
                )
            ).scalar_one()
        )


async def test_erasure_removes_personal_data_and_keeps_the_books(
    client: httpx.AsyncClient, shop: Tenant, engine: AsyncEngine
) -> None:
    code = shop.customer_codes[0]  # Ada, 40 points
    cid = await customer_id(engine, org_id=shop.org_id, code=code)
    await client.post(
        f"{BASE}/{code}/points", json={"points": 5, "reason": "birthday"}, headers=shop.headers
    )
    async with engine.begin() as conn:  # an order the worker stored, naming her by email
        await conn.execute(
            text(
                "INSERT INTO transactions (org_id, external_id, kind, event_id, customer_id,"
                " status, order_body, stream_key, accepted_at)"
                " VALUES (:org, :ext, 'order', :ev, :cid, 'applied', CAST(:body AS jsonb),"
                " :key, now())"
            ),
            {
                "org": shop.org_id,
                "ext": f"o-{secrets.token_hex(4)}",
                "ev": uuid.uuid4(),
                "cid": cid,
                "body": '{"customer": {"type": "email", "value": "ada@example.com"}, "lines": []}',
                "key": f"{shop.org_id}:email:ada@example.com",
            },
        )
    total_before = await _ledger_total(engine, shop.org_id)

    response = await client.delete(f"{BASE}/{code}", headers=shop.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ERASED"

    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT name, email, phone, birthday, status, erased_at FROM customers"
                    " WHERE id = :id"
                ),
                {"id": cid},
            )
        ).one()
        leftovers = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM transactions WHERE customer_id = :id"
                    " AND (order_body::text LIKE '%ada@%' OR stream_key LIKE '%ada@%')"
                ),
                {"id": cid},
            )
        ).scalar_one()
    assert row[:5] == (None, None, None, None, "ERASED") and row.erased_at is not None
    assert leftovers == 0
    assert await _ledger_total(engine, shop.org_id) == total_before
    assert await ledger_mismatches(engine, shop.org_id) == []
    assert await wallet_balance(engine, org_id=shop.org_id, code=code, asset="points") == 45

    detail = (await client.get(f"{BASE}/{code}", headers=shop.headers)).json()
    assert detail["customer"]["status"] == "ERASED" and detail["customer"]["email"] is None
    assert detail["total_points"] == 45 and len(detail["history"]) == 2
    lookup = await client.get(
        "/v1/customers", params={"email": "ada@example.com"}, headers=shop.headers
    )
    assert lookup.status_code == 404
    again = await client.delete(f"{BASE}/{code}", headers=shop.headers)
    assert again.json() == response.json()
    for method, path, body in [
        ("PATCH", f"{BASE}/{code}", {"name": "Ada"}),
        ("POST", f"{BASE}/{code}/points", {"points": 1, "reason": "x"}),
    ]:
        refused = await client.request(method, path, json=body, headers=shop.headers)
        assert (refused.status_code, refused.json()["error"]) == (409, "customer_erased")
    erased_events = await outbox_events(engine, org_id=shop.org_id, event_type="customer.erased")
    assert [e["payload"]["customer_code"] for e in erased_events] == [code]


async def test_pos_key_cannot_administer(
    client: httpx.AsyncClient, shop: Tenant, engine: AsyncEngine
) -> None:
    pos_key = await create_key(engine, org_id=shop.org_id, scopes=["pos"])
    response = await client.get(BASE, headers={"X-Api-Key": pos_key})
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    missing = await client.get(BASE)
    assert missing.status_code == 401
