"""Keyword-only helpers for the rule-engine tests (pure: no services)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rules import CompiledRuleSet, CustomerState, Decision, Line, Order, compile_rule_set, evaluate
from schemas.rules import RuleSet

# A Wednesday, noon UTC: outside every happy hour used in the tests unless stated.
NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def compiled(version: int = 1, **body: Any) -> CompiledRuleSet:
    return compile_rule_set(RuleSet.model_validate(body), version)


def line(
    ref: str,
    name: str,
    quantity: int = 1,
    price: int = 100,
    *,
    sku: str | None = None,
    category: str | None = None,
    discount: int = 0,
) -> Line:
    return Line(
        line_ref=ref,
        name=name,
        quantity=quantity,
        unit_price_cents=price,
        sku=sku,
        category=category,
        discount_cents=discount,
    )


def order(
    *lines: Line,
    at: datetime = NOON,
    tz: str = "UTC",
    amount: int | None = None,
    direct: int = 0,
    card: str | None = None,
) -> Order:
    return Order(
        occurred_at=at,
        timezone=tz,
        lines=lines,
        amount_cents=amount,
        direct_stamps=direct,
        stamp_card_id=card,
    )


def run(rules: CompiledRuleSet, the_order: Order, state: CustomerState | None = None) -> Decision:
    return evaluate(the_order, state or CustomerState(), rules)


def applied(decision: Decision) -> dict[str, int]:
    """rule_id -> points, as listed in rules_applied (stamp rules left out)."""
    return {r.rule_id: r.points for r in decision.rules_applied if not r.stamps}


def match(**fields: list[str]) -> dict[str, list[str]]:
    return dict(fields)


def bundle(rule_id: str, every: int, points: int, **on: list[str]) -> dict[str, Any]:
    label = f"every {every} = {points}"
    return {
        "id": rule_id,
        "label": label,
        "kind": "bundle",
        "every": every,
        "points": points,
        "match": on,
    }


def multiplier(rule_id: str, factor: str, **on: list[str]) -> dict[str, Any]:
    return {
        "id": rule_id,
        "label": f"x{factor}",
        "kind": "multiplier",
        "multiplier": factor,
        "match": on,
    }


def fixed(rule_id: str, points: int, **on: list[str]) -> dict[str, Any]:
    return {
        "id": rule_id,
        "label": f"+{points}/unit",
        "kind": "fixed_per_unit",
        "points": points,
        "match": on,
    }


def card(
    card_id: str,
    slots: int,
    earn: str,
    *,
    reward: str = "Free Coffee",
    min_spend: int = 0,
    on: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": card_id,
        "label": f"{card_id} card",
        "slots": slots,
        "earn": earn,
        "reward": {"name": reward, "type": "product", "validity_days": 30},
    }
    if min_spend:
        body["min_spend_cents"] = min_spend
    if on is not None:
        body["match"] = on
    return body


def happy_hour(
    hh_id: str,
    days: list[str],
    start: str,
    end: str,
    factor: str = "2",
    *,
    scope: dict[str, list[str]] | None = None,
    timezone: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": hh_id,
        "label": f"{hh_id} x{factor}",
        "weekdays": days,
        "start": start,
        "end": end,
        "multiplier": factor,
    }
    if scope is not None:
        body["scope"] = scope
    if timezone is not None:
        body["timezone"] = timezone
    return body


def seed_003_order() -> Order:
    return order(
        line("1", "Cappuccino", 2, 350, category="drinks"),
        line("2", "Cake", 1, 450, category="food"),
    )
