"""``punchline demo``: a coffee chain streams orders through the real stack.

Starts the same stack as ``punchline dev`` on a fresh database, loads the
example rule set, enrols customers, streams orders through the HTTP edge (a
few of them sent twice, as a flaky POS would), waits until every one is
applied and prints a summary.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.bootstrap import CHAIN_RATE_LIMITS, create_org_with_key
from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import customers
from punchline.demo.menu import make_order
from punchline.devstack.ports import free_port
from punchline.stack import running_stack

RULES_FILE = Path(__file__).with_name("coffee_chain.rules.yaml")
DUPLICATE_RATE = 0.03


def _bar(done: int, total: int, started: float) -> None:
    width = 32
    filled = int(width * done / max(total, 1))
    rate = done / max(time.monotonic() - started, 1e-6)
    end = "" if sys.stdout.isatty() else "\n"
    sys.stdout.write(
        f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {rate:,.0f}/s {end}"
    )
    sys.stdout.flush()


async def _enrol(engine: AsyncEngine, org_id: Any, count: int) -> list[str]:
    codes = []
    async with engine.begin() as conn:
        for i in range(count):
            row = await customers.insert_customer(
                conn, org_id=org_id, email=f"guest{i}@coffee.example", name=f"Guest {i}"
            )
            codes.append(row.code)
    return codes


async def _load_rules(client: httpx.AsyncClient, key: str) -> int | None:
    body = yaml.safe_load(RULES_FILE.read_text())
    response = await client.put("/v1/admin/rules", json=body, headers={"X-Api-Key": key})
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return int(response.json()["version"])


async def _stream(
    client: httpx.AsyncClient, key: str, orders: list[dict[str, Any]], concurrency: int
) -> tuple[int, int, float]:
    gate = asyncio.Semaphore(concurrency)
    accepted = failed = done = 0
    step = 50 if sys.stdout.isatty() else max(1, len(orders) // 10)
    started = time.monotonic()

    async def send(order: dict[str, Any]) -> None:
        nonlocal accepted, failed, done
        async with gate:
            for attempt in range(5):
                response = await client.post("/v1/orders", json=order, headers={"X-Api-Key": key})
                if response.status_code != 503:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            if response.status_code == 202:
                accepted += 1
            else:
                failed += 1
            done += 1
            if done % step == 0 or done == len(orders):
                _bar(done, len(orders), started)

    await asyncio.gather(*(send(o) for o in orders))
    print()
    return accepted, failed, time.monotonic() - started


async def _wait_applied(engine: AsyncEngine, org_id: Any, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            count = int(
                (
                    await conn.execute(
                        text("SELECT count(*) FROM transactions WHERE org_id = :o"), {"o": org_id}
                    )
                ).scalar_one()
            )
        if count >= expected:
            break
        await asyncio.sleep(0.25)
    return count


async def _summary(engine: AsyncEngine, org_id: Any) -> dict[str, Any]:
    async with engine.connect() as conn:
        totals = (
            await conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE status = 'applied') AS applied,"
                    " count(*) FILTER (WHERE status = 'rejected') AS rejected,"
                    " COALESCE(sum(duplicate_count), 0) AS duplicates,"
                    " COALESCE(sum(points), 0) AS points,"
                    " COALESCE(sum(jsonb_array_length(coupons)), 0) AS coupons,"
                    " percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
                    "   (ORDER BY extract(epoch FROM applied_at - accepted_at)) AS latency,"
                    " extract(epoch FROM max(applied_at) - min(accepted_at)) AS span"
                    " FROM transactions WHERE org_id = :o"
                ),
                {"o": org_id},
            )
        ).one()
        stamps = (
            await conn.execute(
                text(
                    "SELECT COALESCE(sum(delta), 0) FROM ledger_entries"
                    " WHERE org_id = :o AND kind IN ('order', 'earn') AND asset LIKE 'stamps:%'"
                ),
                {"o": org_id},
            )
        ).scalar_one()
        receipt = (
            await conn.execute(
                text(
                    "SELECT t.external_id, c.code, t.points, t.stamps, t.coupons, t.rules_applied,"
                    " t.order_body, t.rule_set_version FROM transactions t"
                    " JOIN customers c ON c.id = t.customer_id"
                    " WHERE t.org_id = :o AND t.status = 'applied'"
                    " ORDER BY jsonb_array_length(t.rules_applied) DESC, t.points DESC LIMIT 1"
                ),
                {"o": org_id},
            )
        ).first()
    return {"totals": totals, "stamps": stamps, "receipt": receipt}


def _print_summary(
    summary: dict[str, Any], *, sent: int, accepted: int, failed: int, produce_s: float
) -> None:
    t = summary["totals"]
    p50, p95, p99 = (x * 1000 for x in (t.latency or [0, 0, 0]))
    print("\nPunchline demo: summary")
    print("-" * 52)
    print(f"  orders sent (incl. resends)   {sent:>10,}")
    print(f"  accepted (202)                {accepted:>10,}")
    print(f"  refused                       {failed:>10,}")
    print(f"  applied                       {t.applied:>10,}")
    print(f"  rejected by rules             {t.rejected:>10,}")
    print(f"  duplicates caught             {t.duplicates:>10,}")
    print(f"  points issued                 {t.points:>10,}")
    print(f"  stamps issued                 {summary['stamps']:>10,}")
    print(f"  coupons issued                {t.coupons:>10,}")
    print(f"  edge throughput               {accepted / max(produce_s, 1e-6):>10,.0f} orders/s")
    e2e = t.applied / max(float(t.span or 0), 1e-6)
    print(f"  end-to-end throughput         {e2e:>10,.0f} orders/s")
    print(f"  accept→applied p50/p95/p99    {p50:,.0f} / {p95:,.0f} / {p99:,.0f} ms")
    r = summary["receipt"]
    if r is not None:
        print("\nSample receipt")
        print("-" * 52)
        print(f"  order {r.external_id}  customer #{r.code}  rules v{r.rule_set_version}")
        for line in r.order_body["lines"]:
            total = line["quantity"] * line["unit_price_cents"] - line.get("discount_cents", 0)
            print(f"    {line['quantity']} x {line['name']:<22} {total / 100:>8.2f}")
        print("  points breakdown:")
        for rule in r.rules_applied:
            if rule["points"] or not rule.get("stamps"):
                print(f"    {rule['label']:<38} {rule['points']:>+6} pts")
            else:
                print(f"    {rule['label']:<38} {rule['stamps']:>+6} stamps")
        print(f"  total points {r.points}; stamps {dict(r.stamps) or '-'}")
        for coupon in r.coupons:
            print(f"  coupon issued: {coupon['name']} ({coupon['qr_token'][:10]}…)")


async def _demo(
    settings: Settings, api_url: str, n_customers: int, n_orders: int, concurrency: int
) -> int:
    engine = create_engine(settings, pool_size=2)
    try:
        org_id, key = await create_org_with_key(
            settings,
            name="Demo Coffee Co.",
            timezone="Europe/Dublin",
            rate_limits=CHAIN_RATE_LIMITS,
        )
        codes = await _enrol(engine, org_id, n_customers)
        rng = random.Random(2026)
        orders = [
            make_order(rng, customer_code=rng.choice(codes), external_id=f"demo-{i:06d}")
            for i in range(n_orders)
        ]
        resends = [o for o in orders if rng.random() < DUPLICATE_RATE]
        stream = orders + resends
        rng.shuffle(stream)
        async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
            version = await _load_rules(client, key)
            rules = f"v{version} from {RULES_FILE.name}" if version else "default (1 pt/100 c)"
            print(f"Demo Coffee Co.: {n_customers} customers enrolled; rules {rules}")
            print(f"Streaming {len(stream):,} orders ({len(resends)} resent) through {api_url} …")
            accepted, failed, produce_s = await _stream(client, key, stream, concurrency)
        print("Waiting for the workers to apply them …")
        applied = await _wait_applied(engine, org_id, len(orders), timeout_s=300)
        summary = await _summary(engine, org_id)
        _print_summary(
            summary, sent=len(stream), accepted=accepted, failed=failed, produce_s=produce_s
        )
        return 0 if applied >= len(orders) and failed == 0 else 1
    finally:
        await engine.dispose()


def run_demo(*, customers: int, orders: int, concurrency: int) -> int:
    print("Starting Tansu, Postgres, the API and a worker …")
    with running_stack(port=free_port(), database="punchline_demo", fresh_db=True) as stack:
        print(f"API: {stack.api_url}")
        return asyncio.run(_demo(stack.settings, stack.api_url, customers, orders, concurrency))
