"""Rules as versioned data: the merchant API, the simulator, and the worker applying them."""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.support.factories import Tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool, settings_env

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEMO_RULES = Path(__file__).parents[1] / "punchline" / "demo" / "coffee_chain.rules.yaml"

SEED_003_RULES: dict[str, Any] = {
    "program": {"mode": "spend", "points": 1, "per_cents": 100, "rounding": "floor"},
    "bonuses": [
        {
            "id": "cap-bundle",
            "label": "2 cappuccinos = 15 pts",
            "kind": "bundle",
            "every": 2,
            "points": 15,
            "match": {"names": ["cappuccino"]},
        }
    ],
}
SEED_003_LINES = [
    {"name": "Cappuccino", "category": "drinks", "quantity": 2, "unit_price_cents": 350},
    {"name": "Cake", "category": "food", "quantity": 1, "unit_price_cents": 450},
]


async def _rule_versions(engine: AsyncEngine, tenant: Tenant) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM rule_sets WHERE org_id = :o"), {"o": tenant.org_id}
                )
            ).scalar_one()
        )


async def test_default_rules_until_a_version_is_stored(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get("/v1/admin/rules", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json()["version"] == 0
    assert response.json()["rules"]["program"]["per_cents"] == 100


async def test_put_creates_versions_and_lists_them(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = yaml.safe_load(DEMO_RULES.read_text())
    first = await client.put("/v1/admin/rules", json=body, headers=tenant.headers)
    assert first.status_code == 200, first.text
    second = await client.put("/v1/admin/rules", json=SEED_003_RULES, headers=tenant.headers)
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    active = (await client.get("/v1/admin/rules", headers=tenant.headers)).json()
    assert active["version"] == 2
    assert active["rules"]["bonuses"][0]["id"] == "cap-bundle"
    versions = (await client.get("/v1/admin/rules/versions", headers=tenant.headers)).json()
    assert [v["version"] for v in versions] == [2, 1]


def _broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED_003_RULES)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param(
            _broken(("program", "per_cents"), 0), "program.per_cents", id="zero per_cents"
        ),
        pytest.param(_broken(("program", "mode"), "magic"), "program.mode", id="unknown mode"),
        pytest.param(_broken(("bonuses", 0, "every"), -2), "bonuses.0", id="negative bundle"),
        pytest.param(_broken(("bonuses", 0, "kind"), "lottery"), "bonuses.0", id="unknown bonus"),
        pytest.param(_broken(("program", "points"), 1.5), "program.points", id="float points"),
        pytest.param({**SEED_003_RULES, "surprise": 1}, "surprise", id="unknown field"),
    ],
)
async def test_invalid_rules_get_422_with_paths_and_store_nothing(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    body: dict[str, Any],
    where: str,
) -> None:
    response = await client.put("/v1/admin/rules", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["error"] == "validation_error"
    assert any(d["path"].startswith(where) for d in payload["details"]), payload
    assert await _rule_versions(engine, tenant) == 0


async def test_simulate_a_draft_gives_the_breakdown_and_writes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    response = await client.post(
        "/v1/admin/rules:simulate",
        json={
            "rules": SEED_003_RULES,
            "order": {"occurred_at": "2026-11-02T09:30:00+00:00", "lines": SEED_003_LINES},
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["points"] == 26
    assert decision["draft"] is True
    contributions = {r["rule_id"]: r["points"] for r in decision["rules_applied"]}
    assert contributions == {"base": 11, "cap-bundle": 15}
    assert await _rule_versions(engine, tenant) == 0


async def test_simulate_with_a_real_customer_and_a_hypothetical_one(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    rules = {
        **SEED_003_RULES,
        "tiers": [
            {"name": "Bronze", "threshold": 0, "multiplier": "1"},
            {"name": "Gold", "threshold": 1000, "multiplier": "1.5"},
        ],
    }
    order = {"occurred_at": "2026-11-02T09:30:00+00:00", "lines": SEED_003_LINES}
    real = await client.post(
        "/v1/admin/rules:simulate",
        json={"rules": rules, "order": order, "customer_code": tenant.customer_codes[0]},
        headers=tenant.headers,
    )
    gold = await client.post(
        "/v1/admin/rules:simulate",
        json={"rules": rules, "order": order, "customer": {"lifetime_points": 5000}},
        headers=tenant.headers,
    )
    assert real.json()["points"] == 26
    assert gold.json()["points"] == 39  # 26 x 1.5
    unknown = await client.post(
        "/v1/admin/rules:simulate",
        json={"rules": rules, "order": order, "customer_code": "00000000"},
        headers=tenant.headers,
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "customer_not_found"


async def test_pos_key_cannot_use_admin_routes(
    client: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    from punchline.db.repositories import orgs

    async with engine.begin() as conn:
        _, pos_key = await orgs.create_api_key(
            conn, org_id=tenant.org_id, name="till", scopes=["pos"]
        )
    response = await client.put(
        "/v1/admin/rules", json=SEED_003_RULES, headers={"X-Api-Key": pos_key}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


async def _applied(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> dict[str, Any]:
    accepted = (await client.post("/v1/orders", json=body, headers=tenant.headers)).json()

    async def status() -> dict[str, Any]:
        r = await client.get(accepted["status_url"], headers=tenant.headers)
        return r.json()  # type: ignore[no-any-return]

    return await eventually(status, lambda s: s["status"] != "pending", timeout_s=90)


@pytest.mark.slow
async def test_worker_applies_the_active_version_and_picks_up_a_new_one(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    workers.start()
    assert (
        await client.put("/v1/admin/rules", json=SEED_003_RULES, headers=tenant.headers)
    ).status_code == 200
    code = tenant.customer_codes[0]
    first = await _applied(client, tenant, order_body(customer_code=code, lines=SEED_003_LINES))
    assert first["status"] == "applied"
    assert first["points"] == 26
    assert first["rule_set_version"] == 1
    assert {r["rule_id"] for r in first["rules_applied"]} == {"base", "cap-bundle"}

    doubled = _broken(("program", "points"), 2)
    assert (
        await client.put("/v1/admin/rules", json=doubled, headers=tenant.headers)
    ).status_code == 200
    second = await _applied(client, tenant, order_body(customer_code=code, lines=SEED_003_LINES))
    assert second["rule_set_version"] == 2
    assert second["points"] == 23 + 15  # 2 pts per 100 c on 1150 c, floored
    async with engine.connect() as conn:
        versions = (
            (
                await conn.execute(
                    text(
                        "SELECT DISTINCT rule_set_version FROM ledger_entries WHERE org_id = :o"
                        " ORDER BY 1"
                    ),
                    {"o": tenant.org_id},
                )
            )
            .scalars()
            .all()
        )
    assert versions == [1, 2], "every ledger entry records the version that produced it"


@pytest.mark.slow
async def test_stamp_card_coupons_and_daily_cap_in_the_worker(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool, engine: AsyncEngine
) -> None:
    rules = {
        "program": {"mode": "spend", "points": 1, "per_cents": 100},
        "caps": {"per_day": 20},
        "stamp_cards": [
            {
                "id": "coffee",
                "label": "Coffee card",
                "slots": 3,
                "earn": "item",
                "match": {"categories": ["drinks"]},
                "reward": {"name": "Free Coffee", "type": "product", "validity_days": 30},
            }
        ],
        "default_stamp_card": "coffee",
    }
    assert (
        await client.put("/v1/admin/rules", json=rules, headers=tenant.headers)
    ).status_code == 200
    workers.start()
    code = tenant.customer_codes[1]
    lines = [{"name": "Latte", "category": "drinks", "quantity": 7, "unit_price_cents": 200}]
    body = order_body(customer_code=code, external_id="stamps-1", lines=lines)
    first = await _applied(client, tenant, body)
    assert first["points"] == 14
    assert first["stamps"] == {"coffee": 7}
    assert [c["name"] for c in first["coupons"]] == ["Free Coffee", "Free Coffee"]
    # The same order again is a duplicate: no second set of coupons.
    await client.post("/v1/orders", json=body, headers=tenant.headers)
    second = await _applied(
        client, tenant, order_body(customer_code=code, external_id="stamps-2", lines=lines)
    )
    assert second["points"] == 6, "the per-day cap of 20 binds on the second order of the day"
    async with engine.connect() as conn:
        coupons = (
            await conn.execute(
                text(
                    "SELECT card_id, fill_number FROM coupons c JOIN customers u"
                    " ON u.id = c.customer_id WHERE u.code = :code ORDER BY fill_number"
                ),
                {"code": code},
            )
        ).all()
        wallet = (
            await conn.execute(
                text(
                    "SELECT balance, fills FROM wallets w JOIN customers u ON u.id = w.customer_id"
                    " WHERE u.code = :code AND asset = 'stamps:coffee'"
                ),
                {"code": code},
            )
        ).one()
    assert [tuple(c) for c in coupons] == [("coffee", n) for n in range(1, 5)]
    assert tuple(wallet) == (2, 4)  # 14 stamps on a 3-slot card: 4 fills, 2 left


async def test_rules_import_and_export_round_trip(
    settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    env = settings_env(settings)
    run = [sys.executable, "-m", "punchline.cli", "rules"]
    imported = await asyncio.to_thread(
        subprocess.run,
        [*run, "import", str(DEMO_RULES), "--org", str(tenant.org_id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    assert "version 1" in imported.stdout
    exported = await asyncio.to_thread(
        subprocess.run,
        [*run, "export", "--org", str(tenant.org_id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exported.returncode == 0, exported.stderr
    from schemas.rules import RuleSet

    assert RuleSet.model_validate(yaml.safe_load(exported.stdout)) == RuleSet.model_validate(
        yaml.safe_load(DEMO_RULES.read_text())
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("program: {mode: spend, per_cents: 0}\n")
    refused = await asyncio.to_thread(
        subprocess.run,
        [*run, "import", str(bad), "--org", str(tenant.org_id)],
        env={**env, **{k: v for k, v in os.environ.items() if k == "PATH"}},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "program.per_cents" in refused.stderr
