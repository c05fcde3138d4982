"""Synchronous redeem and reward redemption: never overdrawn, idempotent, gated."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from punchline.db.repositories import rule_sets
from schemas.rules import Reward, RewardType, RuleSet, StampCard, StampEarnMode, Tier
from tests.support.books import ledger_mismatches
from tests.support.factories import (
    Tenant,
    configure_org,
    create_reward,
    credit,
    row_counts,
    set_customer,
    wallet_balance,
)
from tests.support.pos import code_ref, pos_client

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def pos(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with pos_client(settings.model_copy(update={"db_pool_size": 20})) as client:
        yield client


def _redeem(code: str, value: int, *, card_type: str = "point", ext: str | None = None) -> dict:
    return {
        "customer": code_ref(code),
        "card_type": card_type,
        "value": value,
        "external_id": ext or f"r-{secrets.token_hex(6)}",
    }


async def _ledger(engine: AsyncEngine, org_id: uuid.UUID, kind: str) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT external_id, delta FROM ledger_entries WHERE org_id = :org AND kind = :k"),
            {"org": org_id, "k": kind},
        )
        return {r.external_id: r.delta for r in rows}


async def _events(engine: AsyncEngine, org_id: uuid.UUID, event_type: str) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT payload FROM outbox WHERE org_id = :org AND event_type = :t ORDER BY id"),
            {"org": org_id, "t": event_type},
        )
        return [r.payload for r in rows]


async def test_redeem_points(pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=100)
    await credit(engine, org_id=tenant.org_id, code=code, amount=4, asset="stamps:default")
    response = await pos.post(
        "/v1/redeem", json=_redeem(code, 30, ext="r-1"), headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["balances"] == {"points": 70, "stamps": 4, "stamp_card_id": "default"}
    assert (body["external_id"], body["customer_code"], body["value"]) == ("r-1", code, 30)
    assert await _ledger(engine, tenant.org_id, "redeem") == {"r-1": -30}
    events = await _events(engine, tenant.org_id, "points.redeemed")
    assert [(e["external_id"], e["value"], e["balance"]) for e in events] == [("r-1", 30, 70)]
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_redeem_stamps_uses_the_default_card(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=6, asset="stamps:default")
    response = await pos.post(
        "/v1/redeem", json=_redeem(code, 5, card_type="stamp"), headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["balances"] == {"points": 0, "stamps": 1, "stamp_card_id": "default"}
    assert await _events(engine, tenant.org_id, "stamps.redeemed")


async def test_stamp_redeem_follows_the_orgs_default_card(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    reward = Reward(name="Free Tea", type=RewardType.PRODUCT)
    body = RuleSet(
        stamp_cards=(
            StampCard(
                id="coffee", label="Coffee", slots=8, earn=StampEarnMode.DIRECT, reward=reward
            ),
            StampCard(id="tea", label="Tea", slots=6, earn=StampEarnMode.DIRECT, reward=reward),
        ),
        default_stamp_card="tea",
    )
    async with engine.begin() as conn:
        await rule_sets.insert_version(
            conn,
            org_id=tenant.org_id,
            body=orjson.dumps(body.model_dump(mode="json")).decode(),
            created_by="test",
        )
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=3, asset="stamps:tea")
    await credit(engine, org_id=tenant.org_id, code=code, amount=9, asset="stamps:coffee")
    response = await pos.post(
        "/v1/redeem", json=_redeem(code, 2, card_type="stamp"), headers=tenant.headers
    )
    assert response.json()["balances"]["stamp_card_id"] == "tea", response.text
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="stamps:tea") == 1
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="stamps:coffee") == 9


async def test_insufficient_balance_writes_nothing(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=10)
    before = await row_counts(engine, tenant.org_id)
    for body in (_redeem(code, 11), _redeem(tenant.customer_codes[1], 1)):
        response = await pos.post("/v1/redeem", json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "insufficient_balance"
    assert await row_counts(engine, tenant.org_id) == before


async def test_retry_replays_the_first_answer_and_deducts_once(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=100)
    body = _redeem(code, 40, ext="same-1")
    first = await pos.post("/v1/redeem", json=body, headers=tenant.headers)
    await credit(engine, org_id=tenant.org_id, code=code, amount=5)
    again = await pos.post("/v1/redeem", json=body, headers=tenant.headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 65
    conflict = await pos.post("/v1/redeem", json={**body, "value": 41}, headers=tenant.headers)
    assert (conflict.status_code, conflict.json()["error"]) == (409, "idempotency_conflict")


async def test_concurrent_retries_of_one_redeem_deduct_once(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=100)
    body = _redeem(code, 10, ext="storm-1")
    responses = await asyncio.gather(
        *(pos.post("/v1/redeem", json=body, headers=tenant.headers) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [200] * 10
    assert len({r.text for r in responses}) == 1
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 90
    assert await _ledger(engine, tenant.org_id, "redeem") == {"storm-1": -10}


async def test_two_hundred_concurrent_redeems_never_overdraw(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    start, each = 1000, 7
    await credit(engine, org_id=tenant.org_id, code=code, amount=start)
    bodies = [_redeem(code, each, ext=f"c200-{i}") for i in range(200)]
    responses = await asyncio.gather(
        *(pos.post("/v1/redeem", json=b, headers=tenant.headers) for b in bodies)
    )
    ok = {b["external_id"] for b, r in zip(bodies, responses, strict=True) if r.status_code == 200}
    refused = [r for r in responses if r.status_code != 200]
    assert all(r.json()["error"] == "insufficient_balance" for r in refused), refused[:3]
    assert len(ok) == start // each  # 142 fit, 58 do not
    balance = await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points")
    assert balance == start - each * len(ok) >= 0
    ledger = await _ledger(engine, tenant.org_id, "redeem")
    assert set(ledger) == ok  # every 200 is in the ledger, no refused one is
    assert all(delta == -each for delta in ledger.values())
    assert await ledger_mismatches(engine, tenant.org_id) == []
    remaining = sorted(r.json()["balances"]["points"] for r in responses if r.status_code == 200)
    assert remaining == sorted(start - each * n for n in range(1, len(ok) + 1))


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        pytest.param("active", True, id="active"),
        pytest.param("past_due", True, id="past due"),
        pytest.param("expired", False, id="expired"),
        pytest.param("cancelled", False, id="cancelled"),
    ],
)
async def test_subscription_gates_redeem(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, status: str, allowed: bool
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=10)
    await configure_org(engine, org_id=tenant.org_id, subscription_status=status)
    response = await pos.post("/v1/redeem", json=_redeem(code, 1), headers=tenant.headers)
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 402
        assert response.json()["error"] == "subscription_required"
        assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 10


async def test_blocked_and_unknown_customers_cannot_redeem(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=10)
    await set_customer(engine, org_id=tenant.org_id, code=code, status="BLOCKED")
    blocked = await pos.post("/v1/redeem", json=_redeem(code, 1), headers=tenant.headers)
    assert (blocked.status_code, blocked.json()["error"]) == (403, "customer_blocked")
    unknown = await pos.post("/v1/redeem", json=_redeem("ABCDEF99", 1), headers=tenant.headers)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "customer_not_found")
    by_email = {**_redeem(code, 1), "customer": {"type": "email", "value": "no@example.com"}}
    assert (await pos.post("/v1/redeem", json=by_email, headers=tenant.headers)).status_code == 404


# --- rewards -----------------------------------------------------------------


async def test_rewards_catalogue_lists_active_rewards(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    coffee = await create_reward(engine, org_id=tenant.org_id, name="Free coffee", points_cost=50)
    await create_reward(
        engine,
        org_id=tenant.org_id,
        name="10% off",
        points_cost=80,
        type="percent_discount",
        value=10,
        required_tier="Gold",
    )
    await create_reward(engine, org_id=tenant.org_id, name="Gone", points_cost=1, active=False)
    body = (await pos.get("/v1/rewards", headers=tenant.headers)).json()
    assert [r["name"] for r in body["rewards"]] == ["Free coffee", "10% off"]
    first = body["rewards"][0]
    assert first == {
        "id": str(coffee),
        "name": "Free coffee",
        "description": None,
        "points_cost": 50,
        "type": "product",
        "value": 0,
        "required_tier": None,
        "icon": "☕",
    }
    assert body["rewards"][1]["type"] == "percent_discount"
    assert body["rewards"][1]["required_tier"] == "Gold"


def _redemption(code: str, reward_id: uuid.UUID, ext: str | None = None) -> dict:
    return {
        "customer": code_ref(code),
        "reward_id": str(reward_id),
        "external_id": ext or f"rw-{secrets.token_hex(6)}",
    }


async def test_reward_redemption_deducts_points_and_issues_a_coupon(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=120)
    reward = await create_reward(
        engine, org_id=tenant.org_id, name="5 off", points_cost=50, type="fixed_amount", value=500
    )
    body = _redemption(code, reward, ext="rw-1")
    response = await pos.post("/v1/redemptions", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["points_redeemed"], out["point_balance"]) == (50, 70)
    coupon = out["coupon"]
    assert (coupon["name"], coupon["type"], coupon["value"]) == ("5 off", "fixed_amount", 500)
    verified = (await pos.get(f"/v1/coupons/{coupon['qr_token']}", headers=tenant.headers)).json()
    assert (verified["status"], verified["source"], verified["reward_id"]) == (
        "issued",
        "reward",
        str(reward),
    )
    again = await pos.post("/v1/redemptions", json=body, headers=tenant.headers)
    assert again.json() == out
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 70
    assert await _events(engine, tenant.org_id, "reward.redeemed")
    assert await ledger_mismatches(engine, tenant.org_id) == []


async def test_reward_redemption_refusals(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    body = RuleSet(tiers=(Tier(name="Silver", threshold=100), Tier(name="Gold", threshold=500)))
    async with engine.begin() as conn:
        await rule_sets.insert_version(
            conn,
            org_id=tenant.org_id,
            body=orjson.dumps(body.model_dump(mode="json")).decode(),
            created_by="test",
        )
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=60)
    pricey = await create_reward(engine, org_id=tenant.org_id, points_cost=61)
    silver = await create_reward(
        engine, org_id=tenant.org_id, points_cost=10, required_tier="Silver"
    )
    before = await row_counts(engine, tenant.org_id)
    cases = [
        (_redemption(code, pricey), 422, "insufficient_points"),
        (_redemption(code, silver), 422, "tier_locked"),
        (_redemption(code, uuid.uuid4()), 404, "reward_not_found"),
        (_redemption("ABCDEF99", silver), 404, "customer_not_found"),
    ]
    for payload, status, error in cases:
        response = await pos.post("/v1/redemptions", json=payload, headers=tenant.headers)
        assert (response.status_code, response.json()["error"]) == (status, error), payload
    assert await row_counts(engine, tenant.org_id) == before
    for tier in ("Silver", "Gold"):
        await set_customer(engine, org_id=tenant.org_id, code=code, tier=tier)
        response = await pos.post(
            "/v1/redemptions", json=_redemption(code, silver), headers=tenant.headers
        )
        assert response.status_code == 200, (tier, response.text)
