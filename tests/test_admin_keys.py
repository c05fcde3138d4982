"""API keys: created once in full, listed without secrets, revoked within seconds everywhere."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.apikeys import hash_key
from punchline.config import Settings
from tests.conftest import api_client
from tests.support.factories import Tenant
from tests.support.polling import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _create(client: httpx.AsyncClient, tenant: Tenant, **body: object) -> dict:
    response = await client.post("/v1/admin/keys", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def test_create_shows_the_key_once(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    created = await _create(
        client, tenant, name="till 4", scopes=["pos"], rate_limits={"earn": "600/minute"}
    )
    key = created["key"]
    assert key.startswith("sk_live_") and len(key) == 40
    assert (created["prefix"], created["last4"]) == (key[:12], key[-4:])
    assert created["scopes"] == ["pos"] and created["rate_limits"] == {"earn": "600/minute"}
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT key_hash FROM api_keys WHERE id = :id"), {"id": created["id"]}
            )
        ).scalar_one()
    assert stored == hash_key(key) and key not in stored

    works = await client.get(
        f"/v1/customers/{tenant.customer_codes[0]}", headers={"X-Api-Key": key}
    )
    assert works.status_code == 200
    not_admin = await client.get("/v1/admin/keys", headers={"X-Api-Key": key})
    assert not_admin.status_code == 403

    listed = (await client.get("/v1/admin/keys", headers=tenant.headers)).json()["keys"]
    mine = next(k for k in listed if k["id"] == created["id"])
    assert "key" not in mine and "key_hash" not in mine
    assert mine["prefix"] == created["prefix"] and mine["revoked_at"] is None
    assert set(mine) >= {"created_at", "last_used_at", "last4", "name", "scopes"}


async def test_revocation_takes_effect_on_every_api_process(
    client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    created = await _create(client, tenant, name="old till", scopes=["pos"])
    headers = {"X-Api-Key": created["key"]}
    path = f"/v1/customers/{tenant.customer_codes[0]}"
    async with api_client(settings) as other_process:
        assert (await other_process.get(path, headers=headers)).status_code == 200  # cached
        revoked = await client.delete(f"/v1/admin/keys/{created['id']}", headers=tenant.headers)
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        assert (await client.get(path, headers=headers)).status_code == 401
        await eventually(
            lambda: other_process.get(path, headers=headers),
            lambda r: r.status_code == 401,
            timeout_s=30,
            describe="revocation seen by another API process",
        )
    again = await client.delete(f"/v1/admin/keys/{created['id']}", headers=tenant.headers)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    active = await client.get(
        "/v1/admin/keys", params={"include_revoked": "false"}, headers=tenant.headers
    )
    assert created["id"] not in [k["id"] for k in active.json()["keys"]]


async def test_unknown_key_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.delete(
        "/v1/admin/keys/00000000-0000-4000-8000-000000000000", headers=tenant.headers
    )
    assert (response.status_code, response.json()["error"]) == (404, "key_not_found")
