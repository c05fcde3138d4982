"""Org settings: read, change, and refuse what is not a setting."""

from __future__ import annotations

import httpx
import pytest

from tests.support.factories import Tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_get_and_patch(client: httpx.AsyncClient, tenant: Tenant) -> None:
    current = await client.get("/v1/admin/org", headers=tenant.headers)
    assert current.status_code == 200
    assert current.json()["id"] == str(tenant.org_id)
    assert current.json()["negative_balance_policy"] == "clamp_to_zero"
    changes = {
        "name": "Bean There",
        "timezone": "Europe/Dublin",
        "currency": "GBP",
        "verification_preset": "balanced",
        "negative_balance_policy": "allow_negative",
        "subscription_status": "past_due",
    }
    patched = await client.patch("/v1/admin/org", json=changes, headers=tenant.headers)
    assert patched.status_code == 200, patched.text
    assert {k: patched.json()[k] for k in changes} == changes
    again = await client.get("/v1/admin/org", headers=tenant.headers)
    assert again.json() == patched.json()


async def test_the_preset_takes_effect(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await client.patch(
        "/v1/admin/org", json={"verification_preset": "strict"}, headers=tenant.headers
    )
    body = {
        "customer": {"type": "code", "value": tenant.customer_codes[0]},
        "card_type": "point",
        "value": 1,
        "external_id": "r-preset",
    }
    response = await client.post("/v1/redeem", json=body, headers=tenant.headers)
    assert (response.status_code, response.json()["error"]) == (412, "pin_required")


async def test_cancelled_subscription_stops_redeem(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await client.patch(
        "/v1/admin/org", json={"subscription_status": "cancelled"}, headers=tenant.headers
    )
    body = {
        "customer": {"type": "code", "value": tenant.customer_codes[0]},
        "card_type": "point",
        "value": 1,
        "external_id": "r-sub",
    }
    response = await client.post("/v1/redeem", json=body, headers=tenant.headers)
    assert (response.status_code, response.json()["error"]) == (402, "subscription_required")
