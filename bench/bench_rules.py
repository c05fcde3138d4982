"""Micro-benchmark of the pure rule engine: µs per order on one core.

Run: ``python bench/bench_rules.py [--quick] [--json-out PATH]``. Prints a markdown
section and writes bench/results/rules.json. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from common import Report, load_average, machine_info, md_table, parse_args, verdict

from rules import (
    CustomerState,
    Line,
    Order,
    RefundLine,
    compile_rule_set,
    decision_to_dict,
    evaluate,
    reverse,
)
from schemas.rules import RuleSet

NAME = "rules"
# The issue sets no target for the rule engine itself. Derived one: the worker's
# 20k orders/s leaves 50 µs of one core per order for everything (decode, rules, SQL);
# rules should take at most half of that.
TARGET_TYPICAL_US = 25.0


def _bonus(i: int) -> dict[str, Any]:
    kinds: list[dict[str, Any]] = [
        {"kind": "multiplier", "multiplier": "2", "match": {"categories": [f"cat{i}"]}},
        {"kind": "fixed_per_unit", "points": 3, "match": {"skus": [f"SKU-{i}"]}},
        {"kind": "bundle", "every": 2, "points": 15, "match": {"names": [f"product {i}"]}},
    ]
    return {"id": f"bonus-{i}", "label": f"bonus {i}", **kinds[i % 3]}


# 20 rules: program, exclusions, 9 bonuses, 2 happy hours, 3 tiers, 2 caps, 2 cards;
# plus the minimum amount.
RULE_SET = RuleSet.model_validate(
    {
        "program": {"mode": "spend", "points": 1, "per_cents": 100},
        "min_amount_cents": 100,
        "exclusions": {"categories": ["gift cards"], "skus": ["GIFT-25"]},
        "bonuses": [
            {
                "id": "cappuccino",
                "label": "2 Cappuccino = 15",
                "kind": "bundle",
                "every": 2,
                "points": 15,
                "match": {"names": ["Cappuccino"]},
            },
            *[_bonus(i) for i in range(8)],
        ],
        "happy_hours": [
            {
                "id": "hh-drinks",
                "label": "drinks x2",
                "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                "start": "15:00",
                "end": "17:00",
                "scope": {"categories": ["drinks"]},
                "multiplier": "2",
            },
            {
                "id": "late",
                "label": "late x1.5",
                "weekdays": ["fri", "sat"],
                "start": "22:00",
                "end": "02:00",
                "multiplier": "1.5",
            },
        ],
        "tiers": [
            {"name": "Bronze", "threshold": 0},
            {"name": "Silver", "threshold": 500, "multiplier": "1.25"},
            {"name": "Gold", "threshold": 2000, "multiplier": "1.5"},
        ],
        "caps": {"per_order": 500, "per_day": 1000},
        "stamp_cards": [
            {
                "id": "coffee",
                "label": "Coffee card",
                "slots": 10,
                "earn": "item",
                "match": {"categories": ["drinks"]},
                "reward": {"name": "Free Coffee", "type": "product"},
            },
            {
                "id": "visits",
                "label": "Visit card",
                "slots": 5,
                "earn": "visit",
                "min_spend_cents": 500,
                "reward": {"name": "10% off", "type": "percent", "value": 10},
            },
        ],
        "default_stamp_card": "coffee",
    }
)

ORDER = Order(
    occurred_at=datetime(2026, 3, 4, 15, 30, tzinfo=UTC),  # a Wednesday, 16:30 in Paris
    timezone="Europe/Paris",
    lines=(
        Line("1", "Cappuccino", 2, 350, sku="CAP-M", category="drinks"),
        Line("2", "Croissant", 1, 250, sku="CRO", category="cat0"),
        Line("3", "Product 2", 3, 199, sku="SKU-1", category="food"),
        Line("4", "Latte", 1, 420, sku="LAT", category="drinks", discount_cents=50),
        Line("5", "Gift card", 1, 2500, sku="GIFT-25", category="gift cards"),
    ),
)
# Heavy: happy hour on, Gold, both cards fill: base + 4 bonuses + happy hour + tier + 2 cards.
HEAVY_STATE = CustomerState(lifetime_points=2400, stamps={"coffee": 8, "visits": 4})
# Typical: 5 lines, one bonus, no happy hour, no tier multiplier, no card fill.
TYPICAL_ORDER = Order(
    occurred_at=datetime(2026, 3, 4, 8, 0, tzinfo=UTC),
    timezone="Europe/Paris",
    lines=(
        Line("1", "Cappuccino", 2, 350, sku="CAP-M", category="drinks"),
        Line("2", "Croissant", 1, 250, sku="CRO", category="pastries"),
        Line("3", "Muffin", 1, 300, sku="MUF", category="pastries"),
        Line("4", "Orange juice", 1, 400, sku="OJ", category="juices"),
        Line("5", "Water", 1, 150, sku="WAT", category="juices"),
    ),
)
TYPICAL_STATE = CustomerState(lifetime_points=100, stamps={"coffee": 2, "visits": 1})


def _cold_orders(count: int) -> list[Order]:
    """Orders of products never seen before: each line misses the product-profile memo."""
    return [
        replace(
            ORDER,
            lines=tuple(
                replace(line, name=f"{line.name} {n}", sku=f"{line.sku}-{n}")
                for line in ORDER.lines
            ),
        )
        for n in range(count)
    ]


def _timings(fn: Callable[[], object], number: int, rounds: int = 9) -> tuple[float, float]:
    """(best, median) µs per call over ``rounds`` rounds of ``number`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter_ns() - start) / number / 1000)
    return min(samples), statistics.median(samples)


def main() -> int:
    args = parse_args(NAME, __doc__.split("\n\n")[0])
    scale = 5 if args.quick else 1
    rounds = 3 if args.quick else 9
    report = Report(NAME, {"rounds": rounds, "calls_scale": f"1/{scale}", "rules": 20, "lines": 5})
    report.machine = machine_info()
    compiled = compile_rule_set(RULE_SET, 1)
    heavy = evaluate(ORDER, HEAVY_STATE, compiled)
    typical = evaluate(TYPICAL_ORDER, TYPICAL_STATE, compiled)
    after = CustomerState(lifetime_points=2400 + heavy.points, stamps=heavy.card_balances)
    refund = (RefundLine("1", 1),)
    cold = iter(_cold_orders(rounds * 500 // scale + 1))
    gc.collect()
    gc.freeze()  # set-up data is long-lived, as a worker's is: keep it out of collections
    typical_name = f"evaluate, typical: {len(typical.rules_applied)} rules apply"
    cases: dict[str, tuple[Callable[[], object], int]] = {
        "sum(range(100)): machine speed reference": (lambda: sum(range(100)), 20_000),
        f"evaluate, heavy: {len(heavy.rules_applied)} rules apply, 2 coupons": (
            lambda: evaluate(ORDER, HEAVY_STATE, compiled),
            5_000,
        ),
        typical_name: (
            lambda: evaluate(TYPICAL_ORDER, TYPICAL_STATE, compiled),
            5_000,
        ),
        "evaluate, heavy, 5 never-seen products": (
            lambda: evaluate(next(cold), HEAVY_STATE, compiled),
            500,
        ),
        "reverse 1 unit of 1 line": (
            lambda: reverse(ORDER, heavy, refund, None, compiled, after),
            5_000,
        ),
        "decision_to_dict": (lambda: decision_to_dict(heavy), 5_000),
        "compile_rule_set (20 rules)": (lambda: compile_rule_set(RULE_SET, 1), 200),
    }
    results = {
        name: _timings(fn, max(1, number // scale), rounds) for name, (fn, number) in cases.items()
    }
    for name, (best, median) in results.items():
        report.rows.append(
            {"operation": name, "best_us": round(best, 2), "median_us": round(median, 2)}
        )
    best_typical, median_typical = results[typical_name]
    report.summary.update(
        {
            "heavy_points": heavy.points,
            "typical_points": typical.points,
            "typical_best_us": round(best_typical, 2),
            "typical_median_us": round(median_typical, 2),
            "orders_per_core_s": round(1e6 / best_typical),
        }
    )
    met = best_typical <= TARGET_TYPICAL_US  # best: the least disturbed by other processes
    report.target(
        "Rules (derived): typical evaluate ≤ 25 µs (half of 50 µs/order at 20k orders/s/core)",
        f"{best_typical:.1f} µs best, {median_typical:.1f} µs median "
        f"({1e6 / best_typical:,.0f} orders/s per core)",
        met,
    )
    table = md_table(
        ["operation", "best µs/op", "median µs/op"],
        [(name, round(best, 1), round(median, 1)) for name, (best, median) in results.items()],
    )
    markdown = "\n".join(
        [
            "## Rule engine (pure, one core)",
            "",
            f"`rules.evaluate` and friends called in a tight loop in this process "
            f"({rounds} rounds; best and median µs per call over the rounds), on a 20-rule "
            f"set (program, exclusions, 9 bonuses, 2 happy hours, 3 tiers, 2 caps, 2 stamp "
            f"cards) and 5-line orders; the heavy decision gives {heavy.points} points, the "
            f"typical one {typical.points}. `sum(range(100))` is there to compare machines. "
            f"Load average {load_average()}.",
            "",
            table,
            "",
            f"- Rules (derived target: the issue sets none; 20k orders/s per core leaves 50 µs "
            f"per order for everything, rules should take ≤ 25 µs; judged on the best round): "
            f"{verdict(met)}: typical evaluate {best_typical:.1f} µs best / "
            f"{median_typical:.1f} µs median, {1e6 / best_typical:,.0f} orders/s per core.",
        ]
    )
    report.finish(markdown, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
