"""A coffee chain's menu and a generator of realistic orders (seeded, reproducible)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

MENU: list[dict[str, Any]] = [
    {"sku": "ESP", "name": "Espresso", "category": "drinks", "unit_price_cents": 250},
    {"sku": "CAP", "name": "Cappuccino", "category": "drinks", "unit_price_cents": 350},
    {"sku": "LAT", "name": "Latte", "category": "drinks", "unit_price_cents": 380},
    {"sku": "FLW", "name": "Flat White", "category": "drinks", "unit_price_cents": 360},
    {"sku": "TEA", "name": "Tea", "category": "drinks", "unit_price_cents": 250},
    {"sku": "CRO", "name": "Croissant", "category": "pastries", "unit_price_cents": 280},
    {"sku": "CAKE", "name": "Cake", "category": "pastries", "unit_price_cents": 450},
    {"sku": "SAN", "name": "Sandwich", "category": "food", "unit_price_cents": 650},
    {"sku": "BEANS", "name": "House Beans 250g", "category": "beans", "unit_price_cents": 1200},
    {"sku": "GIFT-25", "name": "Gift Card", "category": "gift cards", "unit_price_cents": 2500},
]
_WEIGHTS = [10, 14, 10, 8, 5, 9, 6, 5, 2, 1]
STORES = ["dublin-1", "dublin-2", "cork-1", "galway-1"]


def make_order(rng: random.Random, *, customer_code: str, external_id: str) -> dict[str, Any]:
    picks = rng.choices(MENU, weights=_WEIGHTS, k=rng.choice([1, 1, 2, 2, 3, 4]))
    lines: dict[str, dict[str, Any]] = {}
    for item in picks:
        line = lines.setdefault(item["sku"], {**item, "quantity": 0})
        line["quantity"] += rng.choice([1, 1, 1, 2])
    base = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
    occurred = base + timedelta(days=rng.randrange(6), minutes=rng.randrange(12 * 60))
    return {
        "customer": {"type": "code", "value": customer_code},
        "external_id": external_id,
        "occurred_at": occurred.isoformat(),
        "store_id": rng.choice(STORES),
        "currency": "EUR",
        "lines": list(lines.values()),
    }
