"""Property tests: invariants of evaluate and reverse over generated rule sets and orders."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rules import (
    CompiledRuleSet,
    CustomerState,
    Decision,
    Line,
    Order,
    RefundLine,
    Reversal,
    compile_rule_set,
    decision_from_dict,
    decision_to_dict,
    evaluate,
    reverse,
)
from schemas.rules import RuleSet

NAMES = ["Cappuccino", "Latte", "Cake", "Beans", "Gift card"]
CATEGORIES = ["drinks", "food", "beans", "gift cards"]
SKUS = ["A", "B", "C"]
MULTIPLIERS = ["1", "1.01", "1.25", "1.5", "2", "3.33"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
CLOCKS = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]

PROPERTY = settings(max_examples=int(os.environ.get("RULES_EXAMPLES", "150")), deadline=None)


@st.composite
def matches(draw: st.DrawFn) -> dict[str, list[str]]:
    body = {
        "names": draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True)),
        "categories": draw(st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True)),
        "skus": draw(st.lists(st.sampled_from(SKUS), max_size=1)),
    }
    if not any(body.values()):
        body["categories"] = [draw(st.sampled_from(CATEGORIES))]
    return body


@st.composite
def bonuses(draw: st.DrawFn, rule_id: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["multiplier", "fixed_per_unit", "bundle"]))
    body: dict[str, Any] = {"id": rule_id, "label": rule_id, "kind": kind, "match": draw(matches())}
    if kind == "multiplier":
        body["multiplier"] = draw(st.sampled_from(MULTIPLIERS))
    else:
        body["points"] = draw(st.integers(1, 30))
    if kind == "bundle":
        body["every"] = draw(st.integers(1, 4))
    return body


@st.composite
def happy_hours(draw: st.DrawFn, rule_id: str) -> dict[str, Any]:
    start, end = draw(st.lists(st.sampled_from(CLOCKS), min_size=2, max_size=2, unique=True))
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return {
        "id": rule_id,
        "label": rule_id,
        "weekdays": draw(st.lists(st.sampled_from(days), min_size=4, unique=True)),
        "start": start,
        "end": end,
        "multiplier": draw(st.sampled_from(MULTIPLIERS)),
        "scope": draw(st.none() | matches()),
        "timezone": draw(st.none() | st.sampled_from(ZONES)),
    }


@st.composite
def stamp_cards(draw: st.DrawFn, card_id: str) -> dict[str, Any]:
    earn = draw(st.sampled_from(["visit", "item", "direct"]))
    body: dict[str, Any] = {
        "id": card_id,
        "label": card_id,
        "slots": draw(st.integers(1, 12)),
        "earn": earn,
        "reward": {"name": "Free Coffee", "type": "product"},
    }
    if earn == "item":
        body["match"] = draw(matches())
    if earn == "visit":
        body["min_spend_cents"] = draw(st.sampled_from([0, 0, 500, 2000]))
    return body


@st.composite
def rule_sets(draw: st.DrawFn) -> CompiledRuleSet:
    thresholds = sorted(draw(st.sets(st.integers(0, 3000), max_size=3)))
    cards = [draw(stamp_cards(f"card{i}")) for i in range(draw(st.integers(0, 3)))]
    body = {
        "program": {
            "mode": draw(st.sampled_from(["spend", "unit"])),
            "points": draw(st.sampled_from([0, 1, 1, 2, 5])),
            "per_cents": draw(st.sampled_from([1, 33, 100, 250])),
            "per": draw(st.sampled_from(["unit", "visit"])),
            "rounding": draw(st.sampled_from(["floor", "half_up", "ceil"])),
        },
        "min_amount_cents": draw(st.sampled_from([0, 0, 0, 0, 0, 300, 2000])),
        "exclusions": draw(st.none() | matches()),
        "bonuses": [draw(bonuses(f"bonus{i}")) for i in range(draw(st.integers(0, 5)))],
        "happy_hours": [draw(happy_hours(f"hh{i}")) for i in range(draw(st.integers(0, 2)))],
        "tiers": [
            {"name": f"T{t}", "threshold": t, "multiplier": draw(st.sampled_from(MULTIPLIERS))}
            for t in thresholds
        ],
        "caps": {
            "per_order": draw(st.none() | st.integers(1, 300)),
            "per_day": draw(st.none() | st.integers(1, 600)),
        },
        "stamp_cards": cards,
        "default_stamp_card": cards[0]["id"] if cards and draw(st.booleans()) else None,
    }
    return compile_rule_set(RuleSet.model_validate(body), draw(st.integers(1, 9)))


@st.composite
def lines(draw: st.DrawFn, ref: str) -> Line:
    quantity = draw(st.integers(1, 5))
    price = draw(st.integers(0, 2000))
    return Line(
        line_ref=ref,
        name=draw(st.sampled_from(NAMES)),
        quantity=quantity,
        unit_price_cents=price,
        sku=draw(st.none() | st.sampled_from(SKUS)),
        category=draw(st.none() | st.sampled_from(CATEGORIES)),
        discount_cents=draw(st.sampled_from([0, 0, 0, price, draw(st.integers(0, 3000))])),
    )


@st.composite
def orders(draw: st.DrawFn, direct: bool = True) -> Order:
    count = draw(st.integers(0, 6))
    when = draw(st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)))
    return Order(
        occurred_at=when,
        timezone=draw(st.sampled_from(ZONES)),
        lines=tuple(draw(lines(str(i))) for i in range(1, count + 1)),
        amount_cents=draw(st.none() | st.integers(0, 10_000)),
        direct_stamps=draw(st.sampled_from([0, 0, 0, 0, 0, 1, 25])) if direct else 0,
        stamp_card_id=draw(st.sampled_from([None, None, "card0", "card1", "nope"])),
    )


@st.composite
def states(draw: st.DrawFn, rules: CompiledRuleSet) -> CustomerState:
    return CustomerState(
        tier=draw(st.none() | st.sampled_from(["T0", "Gone"])),
        lifetime_points=draw(st.integers(0, 5000)),
        stamps={c.id: draw(st.integers(0, c.slots - 1)) for c in rules.cards},
        card_fills={c.id: draw(st.integers(0, 5)) for c in rules.cards},
        points_today=draw(st.integers(0, 400)),
    )


def _state_after(before: CustomerState, decision: Decision) -> CustomerState:
    fills = dict(before.card_fills)
    for coupon in decision.coupons:
        fills[coupon.card_id] = coupon.fill_number
    return replace(
        before,
        lifetime_points=before.lifetime_points + decision.points,
        stamps={**before.stamps, **decision.card_balances},
        card_fills=fills,
    )


@PROPERTY
@given(data=st.data())
def test_decision_invariants(data: st.DataObject) -> None:
    rules = data.draw(rule_sets())
    order = data.draw(orders())
    state = data.draw(states(rules))
    decision = evaluate(order, state, rules)
    assert decision.points >= 0
    assert all(points >= 0 for points in decision.line_points.values())
    assert sum(r.points for r in decision.rules_applied) == decision.points
    assert sum(decision.line_points.values()) == decision.points
    assert evaluate(order, state, rules) == decision  # deterministic
    assert decision_from_dict(decision_to_dict(decision)) == decision
    for card_id, added in decision.stamps.items():
        assert added == sum(decision.line_stamps[card_id].values()) > 0
        slots = rules.cards_by_id[card_id].slots
        total = state.stamps.get(card_id, 0) + added
        issued = [c.fill_number for c in decision.coupons if c.card_id == card_id]
        first = state.card_fills.get(card_id, 0) + 1
        assert issued == list(range(first, first + total // slots))  # one coupon per N stamps
        assert decision.card_balances[card_id] == total % slots
    if decision.status == "rejected":
        assert (decision.points, decision.stamps, decision.coupons) == (0, {}, ())


@PROPERTY
@given(data=st.data())
def test_adding_a_line_never_lowers_points(data: st.DataObject) -> None:
    rules = data.draw(rule_sets())
    order = data.draw(orders(direct=False))
    state = data.draw(states(rules))
    assume(order.lines)  # an order without lines earns on its amount: another mode
    extra = data.draw(lines(str(len(order.lines) + 1)))
    bigger = replace(order, lines=(*order.lines, extra))
    before, after = evaluate(order, state, rules), evaluate(bigger, state, rules)
    assert after.points >= before.points
    capped = any(
        r.rule_id.startswith("cap_") for r in (*before.rules_applied, *after.rules_applied)
    )
    if before.status == after.status == "applied" and not capped:
        for line in order.lines:  # appending a line leaves what earlier lines earned
            assert after.line_points[line.line_ref] == before.line_points[line.line_ref]


@PROPERTY
@given(data=st.data())
def test_more_spend_never_earns_fewer_points(data: st.DataObject) -> None:
    rules = data.draw(rule_sets())
    order = data.draw(orders(direct=False))
    assume(order.lines)
    state = data.draw(states(rules))
    position = data.draw(st.integers(0, len(order.lines) - 1))
    old = order.lines[position]
    new = replace(
        old,
        quantity=old.quantity + data.draw(st.integers(0, 3)),
        unit_price_cents=old.unit_price_cents + data.draw(st.integers(0, 500)),
    )
    richer = replace(
        order, lines=tuple(new if i == position else x for i, x in enumerate(order.lines))
    )
    assert evaluate(richer, state, rules).points >= evaluate(order, state, rules).points


@PROPERTY
@given(data=st.data())
def test_reversing_everything_returns_to_zero(data: st.DataObject) -> None:
    rules = data.draw(rule_sets())
    order = data.draw(orders())
    state = data.draw(states(rules))
    decision = evaluate(order, state, rules)
    after = _state_after(state, decision)
    reversal = reverse(order, decision, None, None, rules, after)
    assert reversal.points == decision.points
    assert reversal.stamps == decision.stamps
    assert sorted(reversal.coupons_to_void) == sorted(
        (c.card_id, c.fill_number) for c in decision.coupons
    )
    for card_id in decision.stamps:
        assert reversal.card_balances[card_id] == state.stamps.get(card_id, 0)
    assert reversal.complete


@PROPERTY
@given(data=st.data())
def test_repeated_partial_refunds_never_exceed_what_was_earned(data: st.DataObject) -> None:
    rules = data.draw(rule_sets())
    order = data.draw(orders(direct=False))
    state = data.draw(states(rules))
    decision = evaluate(order, state, rules)
    current = _state_after(state, decision)
    taken_points = 0
    taken_stamps: dict[str, int] = {}
    previous: Reversal | None = None
    for _ in range(data.draw(st.integers(0, 4))):
        refunded = previous.refunded_quantities if previous else {}
        left = {x.line_ref: x.quantity - refunded.get(x.line_ref, 0) for x in order.lines}
        refund = tuple(
            RefundLine(ref, data.draw(st.integers(0, units)))
            for ref, units in left.items()
            if units
        )
        previous = reverse(order, decision, refund, previous, rules, current)
        taken_points += previous.points
        for card_id, stamps in previous.stamps.items():
            taken_stamps[card_id] = taken_stamps.get(card_id, 0) + stamps
        current = replace(current, stamps={**current.stamps, **previous.card_balances})
        assert 0 <= taken_points <= decision.points
        assert all(0 <= n <= decision.stamps[c] for c, n in taken_stamps.items())
    final = reverse(order, decision, None, previous, rules, current)
    assert taken_points + final.points == decision.points
    for card_id, stamps in final.stamps.items():
        taken_stamps[card_id] = taken_stamps.get(card_id, 0) + stamps
    assert {c: n for c, n in taken_stamps.items() if n} == dict(decision.stamps)
    voided = final.voided_coupons
    assert len(voided) == len(set(voided))  # a coupon is never listed twice
