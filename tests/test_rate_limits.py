"""Per-key, per-group rate limits (seed 000's defaults), in memory and shared in Redis."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.support.factories import Tenant, create_key
from tests.support.pos import pos_client

pytestmark = pytest.mark.asyncio(loop_scope="session")

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
async def pos(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with pos_client(settings) as client:
        yield client


@pytest.fixture
async def plain_key(engine: AsyncEngine, tenant: Tenant) -> dict[str, str]:
    """A key with no per-key limits: seed 000's defaults apply."""
    return {"X-Api-Key": await create_key(engine, org_id=tenant.org_id, scopes=["pos"])}


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"error": "too many requests"}
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_customer_group_allows_thirty_a_minute(
    pos: httpx.AsyncClient, tenant: Tenant, plain_key: dict[str, str]
) -> None:
    path = f"/v1/customers/{tenant.customer_codes[0]}"
    statuses = [(await pos.get(path, headers=plain_key)).status_code for _ in range(30)]
    assert statuses == [200] * 30
    _assert_limited(await pos.get(path, headers=plain_key))
    _assert_limited(
        await pos.get("/webhook/customer", params={"customer_code": "ABCDEF12"}, headers=plain_key)
    )


async def test_earn_group_spans_orders_earn_and_webhook_pos(
    pos: httpx.AsyncClient, plain_key: dict[str, str]
) -> None:
    # Invalid bodies still count: limits are checked before the body is validated.
    for path in ("/v1/orders", "/v1/earn", "/webhook/pos"):
        for _ in range(20):
            assert (await pos.post(path, json={}, headers=plain_key)).status_code == 422
    _assert_limited(await pos.post("/v1/orders", json={}, headers=plain_key))
    # The other groups are untouched.
    assert (await pos.post("/v1/redeem", json={}, headers=plain_key)).status_code == 422
    assert (await pos.post("/v1/coupons/redeem", json={}, headers=plain_key)).status_code == 422


async def test_redeem_and_coupon_groups_are_separate(
    pos: httpx.AsyncClient, plain_key: dict[str, str]
) -> None:
    for _ in range(60):
        assert (await pos.post("/webhook/redeem", json={}, headers=plain_key)).status_code == 422
    _assert_limited(await pos.post("/v1/redeem", json={}, headers=plain_key))
    for _ in range(60):
        response = await pos.post("/webhook/coupons/redeem", json={}, headers=plain_key)
        assert response.status_code == 422
    _assert_limited(await pos.post("/v1/coupons/redeem", json={}, headers=plain_key))


async def test_per_key_override_and_independent_keys(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, plain_key: dict[str, str]
) -> None:
    tight = {
        "X-Api-Key": await create_key(
            engine, org_id=tenant.org_id, scopes=["pos"], rate_limits={"customer": "5/minute"}
        )
    }
    path = f"/v1/customers/{tenant.customer_codes[0]}"
    assert [(await pos.get(path, headers=tight)).status_code for _ in range(5)] == [200] * 5
    _assert_limited(await pos.get(path, headers=tight))
    assert (await pos.get(path, headers=plain_key)).status_code == 200
    assert (await pos.post("/v1/redeem", json={}, headers=tight)).status_code == 422


async def test_invalid_override_is_refused_when_the_key_is_made(
    engine: AsyncEngine, tenant: Tenant
) -> None:
    with pytest.raises(ValueError, match="not valid"):
        await create_key(engine, org_id=tenant.org_id, scopes=["pos"], rate_limits={"earn": "lots"})


async def test_unauthenticated_requests_get_401_not_429(pos: httpx.AsyncClient) -> None:
    for _ in range(40):
        response = await pos.get("/v1/customers/ABCDEF12")
        assert response.status_code == 401


@pytest.mark.skipif(not _redis_reachable(), reason="no Redis on 127.0.0.1:6379")
async def test_redis_storage_shares_the_limit_across_api_processes(
    settings: Settings, tenant: Tenant, plain_key: dict[str, str]
) -> None:
    shared = settings.model_copy(update={"rate_limit_storage_url": REDIS_URL})
    path = f"/v1/customers/{tenant.customer_codes[0]}"
    async with pos_client(shared) as one, pos_client(shared) as two:
        responses = await asyncio.gather(
            *((one if i % 2 else two).get(path, headers=plain_key) for i in range(40))
        )
        assert sorted(r.status_code for r in responses) == [200] * 30 + [429] * 10
        _assert_limited(await one.get(path, headers=plain_key))
        _assert_limited(await two.get(path, headers=plain_key))


async def test_unreachable_redis_fails_open(
    settings: Settings, tenant: Tenant, plain_key: dict[str, str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        down = settings.model_copy(update={"rate_limit_storage_url": f"redis://127.0.0.1:{port}/0"})
        async with pos_client(down) as pos:
            path = f"/v1/customers/{tenant.customer_codes[0]}"
            statuses = [(await pos.get(path, headers=plain_key)).status_code for _ in range(35)]
    assert statuses == [200] * 35
