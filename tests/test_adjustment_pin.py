"""Balanced and Strict orgs gate balance adjustments with the customer's PIN (seed 001)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import Tenant, configure_org, create_key, credit, wallet_balance

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize("preset", ["balanced", "strict"])
async def test_an_adjustment_needs_the_pin_and_a_retry_replays_without_it(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, preset: str
) -> None:
    await configure_org(engine, org_id=tenant.org_id, preset=preset)
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=100)
    path = f"/v1/admin/customers/{code}/points"
    body = {"points": -30, "reason": "damaged goods", "external_id": "adj-pin-1"}

    challenged = await client.post(path, json=body, headers=tenant.headers)
    assert challenged.status_code == 412, challenged.text
    assert challenged.json()["error"] == "pin_required"
    assert challenged.json()["challenge_id"]
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 100

    app_key = await create_key(engine, org_id=tenant.org_id, scopes=["customer_app"])
    shown = await client.get(f"/v1/customers/{code}/pin", headers={"X-Api-Key": app_key})
    pin = shown.json()["pin"]
    wrong = str((int(pin) + 1) % 10 ** len(pin)).zfill(len(pin))
    refused = await client.post(
        path, json={**body, "verification_pin": wrong}, headers=tenant.headers
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "pin_invalid")
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 100

    done = await client.post(path, json={**body, "verification_pin": pin}, headers=tenant.headers)
    assert done.status_code == 200, done.text
    assert done.json()["new_balance"] == 70
    replay = await client.post(path, json=body, headers=tenant.headers)
    assert replay.status_code == 200
    assert replay.json()["new_balance"] == 70
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 70


async def test_standard_orgs_adjust_without_a_pin(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[1]
    response = await client.post(
        f"/v1/admin/customers/{code}/points",
        json={"points": 25, "reason": "welcome gift"},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 25
