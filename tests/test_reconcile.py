"""``punchline reconcile``: clean books pass; each invariant broken on purpose is reported,
and the command exits non-zero.

The clean org is built through the real flow (edge → broker → worker → Postgres, then the
outbox relay), so every invariant has rows to check: an order that earns points and
stamps and fills a card (a stamp-card coupon), a reward redemption (a reward coupon), a
points redeem, and published outbox events. Each case then breaks one thing by SQL.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.devstack.broker import TansuBroker
from punchline.reconcile import format_report, reconcile
from tests.conftest import api_client, make_settings
from tests.support.factories import create_reward, create_tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool, settings_env
from workers.outbox_relay import OutboxRelay, new_producer
from workers.topics import ensure_topics

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

RULES = {
    "stamp_cards": [
        {
            "id": "coffee",
            "label": "Coffee card",
            "slots": 2,
            "earn": "item",
            "match": {"categories": ["drinks"]},
            "reward": {"name": "Free Coffee", "type": "product"},
        }
    ]
}
LATTES = [{"name": "Latte", "category": "drinks", "quantity": 3, "unit_price_cents": 400}]


@dataclass
class Stack:
    settings: Settings
    engine: AsyncEngine
    client: httpx.AsyncClient
    relay: OutboxRelay


@pytest.fixture(scope="module")
async def stack(
    database_url: str, broker: TansuBroker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One API, one worker and one relay for the module: each test builds its own org."""
    settings = make_settings(database_url, broker.bootstrap)
    await ensure_topics(settings)
    engine = create_engine(settings, pool_size=5)
    pool = WorkerPool(settings, log_dir=str(tmp_path_factory.mktemp("reconcile-workers")))
    producer = new_producer(settings)
    await producer.start()
    try:
        pool.start()
        async with api_client(settings) as client:
            yield Stack(settings, engine, client, OutboxRelay(settings, engine, producer))
    finally:
        pool.stop_all()
        await producer.stop()
        await engine.dispose()


async def build_clean_books(stack: Stack) -> uuid.UUID:
    """An org whose books balance, with rows behind every invariant."""
    tenant = await create_tenant(stack.engine, customers_count=1)
    code = tenant.customer_codes[0]
    client, headers = stack.client, tenant.headers
    put = await client.put("/v1/admin/rules", json=RULES, headers=headers)
    assert put.status_code == 200, put.text
    order = order_body(customer_code=code, external_id=f"o-{secrets.token_hex(4)}", lines=LATTES)
    accepted = await client.post("/v1/orders", json=order, headers=headers)
    assert accepted.status_code in (200, 202), accepted.text

    async def status() -> dict[str, Any]:
        got = await client.get(accepted.json()["status_url"], headers=headers)
        return got.json()  # type: ignore[no-any-return]

    applied = await eventually(status, lambda s: s["status"] != "pending", timeout_s=90)
    assert applied["status"] == "applied" and applied["points"] == 12, applied
    reward_id = await create_reward(stack.engine, org_id=tenant.org_id, points_cost=5)
    bought = await client.post(
        "/v1/redemptions",
        json={
            "customer": {"type": "code", "value": code},
            "reward_id": str(reward_id),
            "external_id": "rw-1",
        },
        headers=headers,
    )
    assert bought.status_code == 200, bought.text
    redeemed = await client.post(
        "/v1/redeem",
        json={
            "customer": {"type": "code", "value": code},
            "card_type": "point",
            "value": 2,
            "external_id": "rd-1",
        },
        headers=headers,
    )
    assert redeemed.status_code == 200, redeemed.text
    while await stack.relay.publish_once():
        pass
    async with stack.engine.connect() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(DISTINCT source) FROM coupons WHERE org_id = :o),"
                    " (SELECT count(*) FROM outbox WHERE org_id = :o AND published_at IS NOT NULL)"
                ),
                {"o": tenant.org_id},
            )
        ).one()
    assert counts[0] == 2, "a stamp-card and a reward coupon"
    assert counts[1] > 0, "published outbox events"
    return tenant.org_id


async def run_cli(settings: Settings, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "punchline.cli",
        "reconcile",
        *args,
        env=settings_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_clean_books_balance(stack: Stack) -> None:
    org_id = await build_clean_books(stack)
    report = await reconcile(stack.engine, org_id=org_id)
    assert report.ok, format_report(report)
    assert {f.name for f in report.findings} == {
        "wallet_equals_ledger",
        "no_negative_balance",
        "applied_has_ledger",
        "coupon_has_source",
        "outbox_published",
    }
    code, out = await run_cli(stack.settings, "--org", str(org_id))
    assert code == 0, out
    assert out.startswith("books balance"), out


# Each case: SQL run against a clean org (bound :org), and the invariants it must break.
# The SQL keeps the other invariants true, so a case proves its own check alone.
BREAKS = [
    pytest.param(
        "UPDATE wallets SET balance = balance + 1 WHERE org_id = :org AND asset = 'points'",
        {"wallet_equals_ledger"},
        id="wallet drifts from its ledger",
    ),
    pytest.param(
        "WITH w AS (SELECT customer_id FROM wallets WHERE org_id = :org AND asset = 'points'),"
        " l AS (INSERT INTO ledger_entries (org_id, customer_id, asset, delta, kind, external_id)"
        "  SELECT :org, customer_id, 'points', -1000, 'adjustment', 'neg-1' FROM w)"
        " UPDATE wallets SET balance = balance - 1000 WHERE org_id = :org AND asset = 'points'",
        {"no_negative_balance"},
        id="negative balance under clamp_to_zero",
    ),
    pytest.param(
        "WITH d AS (DELETE FROM ledger_entries WHERE org_id = :org AND kind = 'redemption'"
        "  RETURNING customer_id, asset, delta)"
        " UPDATE wallets w SET balance = w.balance - d.delta FROM d"
        " WHERE w.customer_id = d.customer_id AND w.asset = d.asset",
        {"applied_has_ledger"},
        id="applied redemption without its ledger entry",
    ),
    pytest.param(
        "UPDATE ledger_entries SET transaction_id = NULL, external_id = 'stray'"
        " WHERE org_id = :org AND kind = 'order' AND asset = 'points'",
        {"applied_has_ledger"},
        id="applied order whose points entry belongs to nothing",
    ),
    pytest.param(
        "UPDATE coupons SET transaction_id = NULL WHERE org_id = :org AND source = 'stamp_card'",
        {"coupon_has_source"},
        id="stamp-card coupon without its transaction",
    ),
    pytest.param(
        "DELETE FROM transactions WHERE org_id = :org AND kind = 'redemption'",
        {"coupon_has_source"},
        id="reward coupon whose redemption record is gone",
    ),
    pytest.param(
        "UPDATE coupons SET transaction_id ="
        " (SELECT id FROM transactions WHERE org_id = :org AND kind = 'order')"
        " WHERE org_id = :org AND source = 'reward'",
        {"coupon_has_source"},
        id="reward coupon pointing at an order",
    ),
    pytest.param(
        "INSERT INTO coupons (org_id, customer_id, token, source, card_id, fill_number,"
        " reward_name, reward_type, reward_value)"
        " SELECT :org, customer_id, md5(random()::text), 'stamp_card', 'coffee', 99,"
        " 'Free Coffee', 'product', 0 FROM wallets WHERE org_id = :org AND asset = 'points'",
        {"coupon_has_source"},
        id="coupon out of thin air",
    ),
    pytest.param(
        "INSERT INTO outbox (org_id, event_type, payload, created_at)"
        " VALUES (:org, 'points.earned', '{}', clock_timestamp() - interval '2 minutes')",
        {"outbox_published"},
        id="outbox event never published",
    ),
    pytest.param(
        "UPDATE outbox SET published_at = NULL, created_at = created_at - interval '1 hour'"
        " WHERE org_id = :org",
        {"outbox_published"},
        id="published outbox rows lost their mark",
    ),
    pytest.param(
        "UPDATE orgs SET negative_balance_policy = 'allow_negative' WHERE id = :org;"
        "WITH w AS (SELECT customer_id FROM wallets WHERE org_id = :org AND asset = 'points'),"
        " l AS (INSERT INTO ledger_entries (org_id, customer_id, asset, delta, kind, external_id)"
        "  SELECT :org, customer_id, 'points', -1000, 'adjustment', 'neg-1' FROM w)"
        " UPDATE wallets SET balance = balance - 1000 WHERE org_id = :org AND asset = 'points'",
        set(),
        id="negative balance the org allows",
    ),
]


@pytest.mark.parametrize(("sql", "broken"), BREAKS)
async def test_each_broken_invariant_is_reported_and_exits_non_zero(
    stack: Stack, sql: str, broken: set[str]
) -> None:
    org_id = await build_clean_books(stack)
    async with stack.engine.begin() as conn:
        for statement in sql.split(";"):
            await conn.execute(text(statement), {"org": org_id})

    report = await reconcile(stack.engine, org_id=org_id)
    assert {f.name for f in report.failed} == broken, format_report(report)
    for finding in report.failed:
        assert all(row["org_id"] == org_id for row in finding.rows)

    code, out = await run_cli(stack.settings, "--org", str(org_id))
    if broken:
        assert code == 1, out
        assert out.startswith("books DO NOT balance"), out
        for name in broken:
            assert f"FAIL  {name}:" in out, out
    else:
        assert (code, out.startswith("books balance")) == (0, True), out


async def test_an_unknown_org_id_is_refused_by_the_cli(stack: Stack) -> None:
    code, out = await run_cli(stack.settings, "--org", "not-a-uuid")
    assert code == 2 and "not an org id" in out, out


async def test_report_rows_are_capped(stack: Stack) -> None:
    org_id = await build_clean_books(stack)
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO outbox (org_id, event_type, payload, created_at)"
                " SELECT :org, 'x', '{}', clock_timestamp() - interval '2 minutes'"
                " FROM generate_series(1, 5)"
            ),
            {"org": org_id},
        )
    report = await reconcile(stack.engine, org_id=org_id, limit=3)
    finding = report.finding("outbox_published")
    assert (len(finding.rows), finding.truncated) == (3, True)
    assert "more rows not shown" in format_report(report)
    everyone = await reconcile(stack.engine, limit=3)  # no org: the same checks, every org
    assert not everyone.finding("outbox_published").ok
    assert all(len(f.rows) <= 3 for f in everyone.findings)
