"""Coupon verification and atomic consumption."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.support.factories import (
    Tenant,
    configure_org,
    create_coupon,
    create_tenant,
    row_counts,
    set_customer,
)
from tests.support.pos import pos_client

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def pos(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with pos_client(settings) as client:
        yield client


async def _redeemed_events(engine: AsyncEngine, tenant: Tenant) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM outbox WHERE org_id = :org"
                        " AND event_type = 'coupon.redeemed'"
                    ),
                    {"org": tenant.org_id},
                )
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        pytest.param("product", "product", id="product"),
        pytest.param("percent", "percent_discount", id="percent"),
        pytest.param("fixed", "fixed_amount", id="fixed"),
    ],
)
async def test_verify_shows_reward_type_and_value(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, stored: str, shown: str
) -> None:
    code = tenant.customer_codes[0]
    token = await create_coupon(
        engine, org_id=tenant.org_id, code=code, reward_type=stored, reward_value=15
    )
    body = (await pos.get(f"/v1/coupons/{token}", headers=tenant.headers)).json()
    assert (body["type"], body["value"], body["status"]) == (shown, 15, "issued")
    assert (body["name"], body["customer_code"], body["source"]) == (
        "Free Coffee",
        code,
        "stamp_card",
    )


async def test_redeem_once_then_already_used(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    token = await create_coupon(engine, org_id=tenant.org_id, code=tenant.customer_codes[0])
    first = await pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "redeemed" and first.json()["redeemed_at"]
    second = await pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
    assert (second.status_code, second.json()["error"]) == (409, "already_used")
    shown = (await pos.get(f"/v1/coupons/{token}", headers=tenant.headers)).json()
    assert shown["status"] == "redeemed"
    assert await _redeemed_events(engine, tenant) == 1


async def test_two_cashiers_one_coupon(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    for _ in range(5):
        token = await create_coupon(engine, org_id=tenant.org_id, code=tenant.customer_codes[0])
        responses = await asyncio.gather(
            *(
                pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
                for _ in range(2)
            )
        )
        assert sorted(r.status_code for r in responses) == [200, 409]
    assert await _redeemed_events(engine, tenant) == 5


@pytest.mark.parametrize(
    ("status", "expires_in", "http", "error"),
    [
        pytest.param("issued", timedelta(days=-1), 410, "coupon_expired", id="expired"),
        pytest.param("voided", timedelta(days=1), 409, "coupon_voided", id="voided"),
        pytest.param("redeemed", timedelta(days=1), 409, "already_used", id="used"),
    ],
)
async def test_coupons_that_cannot_be_redeemed(
    pos: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    status: str,
    expires_in: timedelta,
    http: int,
    error: str,
) -> None:
    token = await create_coupon(
        engine,
        org_id=tenant.org_id,
        code=tenant.customer_codes[0],
        status=status,
        expires_at=datetime.now(UTC) + expires_in,
    )
    before = await row_counts(engine, tenant.org_id)
    response = await pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
    assert (response.status_code, response.json()["error"]) == (http, error)
    assert await row_counts(engine, tenant.org_id) == before


async def test_unknown_and_foreign_tokens_are_not_found(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    other = await create_tenant(engine, customers_count=1)
    foreign = await create_coupon(engine, org_id=other.org_id, code=other.customer_codes[0])
    for token in ("nope", foreign):
        redeem = await pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
        assert (redeem.status_code, redeem.json()["error"]) == (404, "coupon_not_found")
        verify = await pos.get(f"/v1/coupons/{token}", headers=tenant.headers)
        assert verify.status_code == 404


async def test_subscription_and_blocked_customer_gate_coupon_redeem(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    token = await create_coupon(engine, org_id=tenant.org_id, code=code)
    await configure_org(engine, org_id=tenant.org_id, subscription_status="expired")
    gated = await pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
    assert (gated.status_code, gated.json()["error"]) == (402, "subscription_required")
    await configure_org(engine, org_id=tenant.org_id, subscription_status="active")
    await set_customer(engine, org_id=tenant.org_id, code=code, status="BLOCKED")
    blocked = await pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
    assert (blocked.status_code, blocked.json()["error"]) == (403, "customer_blocked")
    shown = (await pos.get(f"/v1/coupons/{token}", headers=tenant.headers)).json()
    assert shown["status"] == "issued"


async def test_twenty_cashiers_one_coupon(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    """Issue 7: the same coupon redeemed by 20 concurrent requests gives exactly one 200."""
    token = await create_coupon(engine, org_id=tenant.org_id, code=tenant.customer_codes[0])
    responses = await asyncio.gather(
        *(
            pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
            for _ in range(20)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 19
    assert {r.json()["error"] for r in responses if r.status_code == 409} == {"already_used"}
    assert await _redeemed_events(engine, tenant) == 1
