"""Merchants manage the reward catalogue that POS systems list and redeem."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import Tenant, create_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")

COFFEE = {"name": "Free coffee", "points_cost": 50, "type": "product", "icon": "☕"}


async def test_create_list_change_and_retire(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await client.post("/v1/admin/rewards", json=COFFEE, headers=tenant.headers)
    assert created.status_code == 201, created.text
    reward = created.json()
    assert (reward["points_cost"], reward["active"], reward["validity_days"]) == (50, True, 30)
    listed = (await client.get("/v1/rewards", headers=tenant.headers)).json()["rewards"]
    assert [r["id"] for r in listed] == [reward["id"]]

    cheaper = await client.patch(
        f"/v1/admin/rewards/{reward['id']}", json={"points_cost": 40}, headers=tenant.headers
    )
    assert cheaper.json()["points_cost"] == 40
    retired = await client.patch(
        f"/v1/admin/rewards/{reward['id']}", json={"active": False}, headers=tenant.headers
    )
    assert retired.json()["active"] is False
    assert (await client.get("/v1/rewards", headers=tenant.headers)).json()["rewards"] == []
    everything = (await client.get("/v1/admin/rewards", headers=tenant.headers)).json()
    assert [(r["id"], r["active"]) for r in everything] == [(reward["id"], False)]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({**COFFEE, "points_cost": 0}, "points_cost", id="free reward"),
        pytest.param({**COFFEE, "points_cost": 1.5}, "points_cost", id="float cost"),
        pytest.param({**COFFEE, "type": "hug"}, "type", id="unknown type"),
        pytest.param(
            {**COFFEE, "type": "percent_discount", "value": 150}, "body", id="150 percent"
        ),
        pytest.param(
            {**COFFEE, "type": "fixed_amount", "value": 0}, "body", id="zero fixed amount"
        ),
        pytest.param({**COFFEE, "name": ""}, "name", id="empty name"),
        pytest.param({**COFFEE, "validity_days": 0}, "validity_days", id="zero validity"),
        pytest.param({**COFFEE, "surprise": 1}, "surprise", id="unknown field"),
    ],
)
async def test_bad_rewards_get_422_and_nothing_is_stored(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, body: dict[str, Any], where: str
) -> None:
    response = await client.post("/v1/admin/rewards", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert any(d["path"].startswith(where) for d in response.json()["details"])
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM rewards WHERE org_id = :o"), {"o": tenant.org_id}
            )
        ).scalar_one()
    assert count == 0


async def test_a_patch_keeps_value_within_the_type(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = {**COFFEE, "type": "percent_discount", "value": 10}
    reward = (await client.post("/v1/admin/rewards", json=body, headers=tenant.headers)).json()
    response = await client.patch(
        f"/v1/admin/rewards/{reward['id']}", json={"value": 400}, headers=tenant.headers
    )
    assert response.status_code == 422
    unchanged = (await client.get("/v1/admin/rewards", headers=tenant.headers)).json()
    assert unchanged[0]["value"] == 10


async def test_another_orgs_reward_is_not_found_and_pos_keys_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    reward = (await client.post("/v1/admin/rewards", json=COFFEE, headers=tenant.headers)).json()
    other = await create_tenant(engine)
    response = await client.patch(
        f"/v1/admin/rewards/{reward['id']}", json={"active": False}, headers=other.headers
    )
    assert response.status_code == 404
    assert response.json()["error"] == "reward_not_found"
    assert (await client.get("/v1/admin/rewards", headers=other.headers)).json() == []

    from punchline.db.repositories import orgs

    async with engine.begin() as conn:
        _, pos_key = await orgs.create_api_key(conn, org_id=tenant.org_id, name="t", scopes=["pos"])
    refused = await client.post("/v1/admin/rewards", json=COFFEE, headers={"X-Api-Key": pos_key})
    assert refused.status_code == 403
