"""A key of org A can neither read nor change anything of org B, on every admin route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.devstack.broker import TansuBroker
from tests.conftest import api_client, make_settings
from tests.support.factories import Tenant, create_key, create_tenant, credit

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def admin(database_url: str, broker: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(make_settings(database_url, broker.bootstrap)) as client:
        yield client


@dataclass
class Victim:
    tenant: Tenant
    code: str
    key_id: str
    key: str
    hook_id: str


@pytest.fixture
async def victim(admin: httpx.AsyncClient, engine: AsyncEngine) -> Victim:
    tenant = await create_tenant(engine, customers_count=1)
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=100)
    headers = tenant.headers
    await admin.put(
        "/v1/admin/products",
        json={"products": [{"sku": "SECRET", "name": "Secret Blend", "price_cents": 999}]},
        headers=headers,
    )
    key = (
        await admin.post("/v1/admin/keys", json={"name": "b", "scopes": ["pos"]}, headers=headers)
    ).json()
    hook = (
        await admin.post(
            "/v1/admin/webhooks",
            json={"url": "http://127.0.0.1:9/b", "events": ["*"]},
            headers=headers,
        )
    ).json()
    return Victim(tenant, code, key["id"], key["key"], hook["id"])


async def everything_b_sees(admin: httpx.AsyncClient, victim: Victim) -> dict[str, Any]:
    """B's own view of its data, through its own admin key."""
    h = victim.tenant.headers
    keys = (await admin.get("/v1/admin/keys", headers=h)).json()["keys"]
    for key in keys:
        key.pop("last_used_at")  # B's own reads touch it
    return {
        "customer": (await admin.get(f"/v1/admin/customers/{victim.code}", headers=h)).json(),
        "products": (await admin.get("/v1/admin/products", headers=h)).json(),
        "keys": keys,
        "org": (await admin.get("/v1/admin/org", headers=h)).json(),
        "hooks": (await admin.get("/v1/admin/webhooks", headers=h)).json(),
    }


WRITES = [
    ("GET", "/v1/admin/customers/{code}", None),
    ("PATCH", "/v1/admin/customers/{code}", {"status": "BLOCKED"}),
    ("POST", "/v1/admin/customers/{code}/points", {"points": -100, "reason": "theft"}),
    ("DELETE", "/v1/admin/customers/{code}", None),
    ("DELETE", "/v1/admin/keys/{key_id}", None),
    ("GET", "/v1/admin/webhooks/{hook_id}", None),
    ("GET", "/v1/admin/webhooks/{hook_id}/deliveries", None),
    ("DELETE", "/v1/admin/webhooks/{hook_id}", None),
]


async def test_another_orgs_objects_are_not_found(
    admin: httpx.AsyncClient, victim: Victim, tenant: Tenant
) -> None:
    before = await everything_b_sees(admin, victim)
    ids = {"code": victim.code, "key_id": victim.key_id, "hook_id": victim.hook_id}
    for method, template, body in WRITES:
        response = await admin.request(
            method, template.format(**ids), json=body, headers=tenant.headers
        )
        assert response.status_code == 404, (method, template, response.text)
        assert response.json()["error"].endswith("_not_found")
        assert str(victim.tenant.org_id) not in response.text
    assert await everything_b_sees(admin, victim) == before


async def test_lists_and_settings_show_only_the_keys_org(
    admin: httpx.AsyncClient, victim: Victim, tenant: Tenant
) -> None:
    before = await everything_b_sees(admin, victim)
    h = tenant.headers
    reads = {
        "customers": await admin.get(
            "/v1/admin/customers", params={"search": victim.code}, headers=h
        ),
        "erased": await admin.get("/v1/admin/customers?statusFilter=ERASED", headers=h),
        "products": await admin.get("/v1/admin/products", headers=h),
        "keys": await admin.get("/v1/admin/keys", headers=h),
        "hooks": await admin.get("/v1/admin/webhooks", headers=h),
        "org": await admin.get("/v1/admin/org", headers=h),
    }
    for name, response in reads.items():
        assert response.status_code == 200, name
        for secret in (victim.code, "SECRET", victim.key_id, victim.hook_id):
            assert secret not in response.text, (name, secret)
    assert reads["org"].json()["id"] == str(tenant.org_id)

    # Writes that name no object act on A's own data only.
    await admin.put(
        "/v1/admin/products",
        json={"products": [{"sku": "SECRET", "name": "Mine now", "price_cents": 1}]},
        headers=h,
    )
    await admin.patch("/v1/admin/org", json={"name": "A renamed"}, headers=h)
    await admin.post("/v1/admin/keys", json={"name": "a", "scopes": ["admin"]}, headers=h)
    await admin.post(
        "/v1/admin/webhooks", json={"url": "http://127.0.0.1:9/a", "events": ["*"]}, headers=h
    )
    assert await everything_b_sees(admin, victim) == before
    b_key_still_works = await admin.get(
        f"/v1/customers/{victim.code}", headers={"X-Api-Key": victim.key}
    )
    assert b_key_still_works.status_code == 200


async def test_pos_and_customer_app_keys_cannot_use_admin_routes(
    admin: httpx.AsyncClient, victim: Victim, engine: AsyncEngine
) -> None:
    for scopes in (["pos"], ["customer_app"]):
        key = await create_key(engine, org_id=victim.tenant.org_id, scopes=scopes)
        for method, template, body in [
            *WRITES,
            ("GET", "/v1/admin/customers", None),
            ("PUT", "/v1/admin/products", {"products": [{"sku": "X", "name": "x"}]}),
            ("POST", "/v1/admin/keys", {"name": "x", "scopes": ["admin"]}),
            ("PATCH", "/v1/admin/org", {"name": "x"}),
            ("POST", "/v1/admin/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["*"]}),
        ]:
            path = template.format(code=victim.code, key_id=victim.key_id, hook_id=victim.hook_id)
            response = await admin.request(method, path, json=body, headers={"X-Api-Key": key})
            assert (response.status_code, response.json()["error"]) == (403, "forbidden"), path


async def test_no_key_or_a_bad_key_is_401(admin: httpx.AsyncClient, victim: Victim) -> None:
    for headers in ({}, {"X-Api-Key": "sk_live_" + "x" * 32}, {"Authorization": "Bearer nope"}):
        response = await admin.get(f"/v1/admin/customers/{victim.code}", headers=headers)
        assert response.status_code == 401
