"""What the worker bench works on: the rule set, the orders, the seeded customers.

- a 20-rule rule set: the demo coffee chain's, grown (1 stamp card, 3 tiers);
- orders of 3 lines from the demo menu, as the IngestEvents the edge produces
  (the same bytes), and a producer that sends them as the edge does;
- one org with that rule set and many customers with some history (tiers,
  points, stamps), inserted set-based.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaProducer
from common import ROOT

import rules
from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import bench_seed, orgs, rule_sets
from punchline.demo.menu import MENU, STORES
from schemas.events import IngestEvent, IngestKind
from schemas.orders import OrderIn
from schemas.rules import RuleSet

RULES_FILE = ROOT / "punchline" / "demo" / "coffee_chain.rules.yaml"
TIMEZONE = "Europe/Dublin"


# -- rule set: the demo coffee chain, grown to 20 rules -----------------------------


def rule_set() -> RuleSet:
    """20 rules: program, exclusions, 10 bonuses, 2 happy hours, 3 tiers, 2 caps, 1 card."""
    body = yaml.safe_load(RULES_FILE.read_text())
    body["bonuses"] += [
        {
            "id": "espresso-bundle",
            "label": "Every 3 Espresso = 10 pts",
            "kind": "bundle",
            "every": 3,
            "points": 10,
            "match": {"names": ["Espresso"]},
        },
        {
            "id": "latte-bundle",
            "label": "Every 2 Latte = 12 pts",
            "kind": "bundle",
            "every": 2,
            "points": 12,
            "match": {"names": ["Latte"]},
        },
        {
            "id": "tea-plus",
            "label": "Tea +2 pts",
            "kind": "fixed_per_unit",
            "points": 2,
            "match": {"skus": ["TEA"]},
        },
        {
            "id": "flat-white-plus",
            "label": "Flat White +3 pts",
            "kind": "fixed_per_unit",
            "points": 3,
            "match": {"skus": ["FLW"]},
        },
        {
            "id": "food-x1.5",
            "label": "Food x1.5",
            "kind": "multiplier",
            "multiplier": "1.5",
            "match": {"categories": ["food"]},
        },
        {
            "id": "cake-plus",
            "label": "Cake +5 pts",
            "kind": "fixed_per_unit",
            "points": 5,
            "match": {"names": ["Cake"]},
        },
    ]
    body["happy_hours"].append(
        {
            "id": "early-bird",
            "label": "Early bird x1.5",
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
            "start": "07:00",
            "end": "08:30",
            "multiplier": "1.5",
        }
    )
    parsed = RuleSet.model_validate(body)
    count = (
        2  # program, exclusions
        + len(parsed.bonuses)
        + len(parsed.happy_hours)
        + len(parsed.tiers)
        + 2  # caps per order, per day
        + len(parsed.stamp_cards)
    )
    assert count == 20 and len(parsed.stamp_cards) == 1, count
    rules.compile_rule_set(parsed, 1)
    return parsed


def tier_of(lifetime: int) -> str:
    return "Gold" if lifetime >= 2000 else "Silver" if lifetime >= 500 else "Bronze"


# -- orders -------------------------------------------------------------------------------

_WEIGHTS = [10, 14, 10, 8, 5, 9, 6, 5, 2, 1]  # punchline.demo.menu's popularity


def order_body(rng: random.Random, code: str, external_id: str) -> dict[str, Any]:
    picks: list[dict[str, Any]] = []
    while len(picks) < 3:
        item = rng.choices(MENU, weights=_WEIGHTS)[0]
        if item not in picks:
            picks.append(item)
    base = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # a Monday; Dublin is UTC in November
    occurred = base + timedelta(days=rng.randrange(7), minutes=rng.randrange(12 * 60))
    return {
        "customer": {"type": "code", "value": code},
        "external_id": external_id,
        "occurred_at": occurred.isoformat(),
        "store_id": rng.choice(STORES),
        "currency": "EUR",
        "lines": [
            {
                "line_ref": str(i + 1),
                "sku": p["sku"],
                "name": p["name"],
                "category": p["category"],
                "quantity": rng.choice([1, 1, 1, 2]),
                "unit_price_cents": p["unit_price_cents"],
            }
            for i, p in enumerate(picks)
        ],
    }


def make_messages(
    rng: random.Random, org_id: uuid.UUID, codes: list[str], prefix: str, n: int
) -> list[tuple[bytes, bytes]]:
    """(key, value) exactly as the edge produces them (POST /v1/orders)."""
    out = []
    for i in range(n):
        order = OrderIn.model_validate(
            order_body(rng, rng.choice(codes), f"{prefix}{i:07d}"), strict=False
        )
        event = IngestEvent(
            kind=IngestKind.order,
            event_id=uuid.uuid4(),
            org_id=org_id,
            external_id=order.external_id,
            customer=order.customer,
            accepted_at=datetime.now(UTC),
            order=order,
        )
        out.append((event.key, orjson.dumps(event.model_dump(mode="json"))))
    return out


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Send all, acks=all as the edge does; returns seconds."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=1024 * 1024,
        request_timeout_ms=30_000,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for i in range(0, len(messages), 5_000):
            futures = [await producer.send(topic, v, key=k) for k, v in messages[i : i + 5_000]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


# -- seed ------------------------------------------------------------------------------


async def seed(url: str, customers: int, rng: random.Random) -> tuple[uuid.UUID, list[str], float]:
    """The org, its rule set and ``customers`` customers; returns (org id, codes, seconds)."""
    started = time.perf_counter()
    engine = create_engine(Settings(database_url=url), pool_size=1)
    try:
        async with engine.begin() as conn:
            org_id = await orgs.create_org(conn, name="bench coffee chain", timezone=TIMEZONE)
            await rule_sets.insert_version(
                conn,
                org_id=org_id,
                body=rule_set().model_dump_json(exclude_none=True),
                created_by="bench",
            )
        codes = [f"{c:08X}" for c in rng.sample(range(16**8), customers)]
        lifetime = [int(rng.paretovariate(1.2) * 150) % 5000 for _ in codes]
        ids_by_code: dict[str, int] = {}
        for i in range(0, len(codes), 25_000):
            chunk = slice(i, i + 25_000)
            async with engine.begin() as conn:
                ids_by_code.update(
                    await bench_seed.insert_customers(
                        conn,
                        org_id=org_id,
                        codes=codes[chunk],
                        lifetime_points=lifetime[chunk],
                        tiers=[tier_of(lp) for lp in lifetime[chunk]],
                    )
                )
        ids = [ids_by_code[c] for c in codes]
        async with engine.begin() as conn:
            await bench_seed.insert_wallets(
                conn,
                org_id=org_id,
                customer_ids=ids,
                asset="points",
                balances=[lp // 2 for lp in lifetime],
                fills=[0] * len(ids),
            )
            stamped = [i for i in ids if rng.random() < 0.6]
            await bench_seed.insert_wallets(
                conn,
                org_id=org_id,
                customer_ids=stamped,
                asset="stamps:coffee",
                balances=[rng.randrange(10) for _ in stamped],
                fills=[rng.randrange(4) for _ in stamped],
            )
            await bench_seed.analyze(conn, ["customers", "wallets"])
    finally:
        await engine.dispose()
    return org_id, codes, time.perf_counter() - started
