"""evaluate: order of application, min amount, determinism, invalid input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from rules_factories import (
    applied,
    card,
    compiled,
    happy_hour,
    line,
    multiplier,
    order,
    run,
    seed_003_order,
)

from rules import CompiledRuleSet, CustomerState, InvalidOrder, Line, Order, RefundLine

WEDNESDAY_4PM = datetime(2026, 3, 4, 16, 0, tzinfo=UTC)


def _full_rules(per_order_cap: int = 1000) -> CompiledRuleSet:
    return compiled(
        bonuses=[multiplier("drinks", "2", categories=["drinks"])],
        happy_hours=[happy_hour("hh", ["wed"], "15:00", "17:00")],
        tiers=[{"name": "Gold", "threshold": 0, "multiplier": "1.5"}],
        caps={"per_order": per_order_cap},
        stamp_cards=[card("coffee", 10, "item", on={"categories": ["drinks"]})],
    )


def _full_order() -> Order:
    return order(
        line("1", "Latte", 2, 350, category="drinks"),
        line("2", "Cake", 1, 450, category="food"),
        at=WEDNESDAY_4PM,
    )


def test_order_of_application_base_bonuses_happy_hour_tier_caps() -> None:
    decision = run(_full_rules(per_order_cap=50), _full_order())
    # base 11.5 -> 11; drinks x2 +7; happy hour x2 on 18.5 -> +18;
    # Gold x1.5 on 37 -> +18; cap 54 -> 50.
    assert [(r.rule_id, r.points, r.stamps) for r in decision.rules_applied] == [
        ("base", 11, 0),
        ("drinks", 7, 0),
        ("hh", 18, 0),
        ("tier", 18, 0),
        ("cap_per_order", -4, 0),
        ("coffee", 0, 2),
    ]
    assert decision.points == 50
    assert sum(decision.line_points.values()) == 50


def test_decision_shape() -> None:
    decision = run(_full_rules(), _full_order(), CustomerState(stamps={"coffee": 9}))
    assert decision.status == "applied"
    assert decision.error_code is None
    assert decision.points == 54
    assert decision.line_points == {"1": 42, "2": 12}
    assert decision.stamps == {"coffee": 2}
    assert decision.card_balances == {"coffee": 1}
    assert [c.fill_number for c in decision.coupons] == [1]
    assert decision.line_stamps == {"coffee": {"1": 2}}
    assert (decision.tier, decision.tier_changed) == ("Gold", False)
    assert decision.rule_set_version == 1


@pytest.mark.parametrize(
    ("the_order", "status"),
    [
        pytest.param(order(line("1", "A", 1, 999)), "rejected", id="999 < 1000"),
        pytest.param(order(line("1", "A", 1, 1000)), "applied", id="1000 is enough"),
        pytest.param(
            order(line("1", "A", 1, 1200, discount=300)), "rejected", id="after line discounts"
        ),
        pytest.param(order(amount=999), "rejected", id="amount only"),
        pytest.param(order(direct=3), "applied", id="direct stamps have no minimum"),
    ],
)
def test_min_amount(the_order: Order, status: str) -> None:
    rules = compiled(
        min_amount_cents=1000,
        stamp_cards=[card("coffee", 10, "item", on={"names": ["A"]})],
        default_stamp_card="coffee",
    )
    decision = run(rules, the_order, CustomerState(tier=None, lifetime_points=5))
    assert decision.status == status
    if status == "rejected":
        assert decision.error_code == "amount_too_low"
        assert (decision.points, decision.stamps, decision.coupons) == (0, {}, ())
        assert decision.rules_applied == ()
        assert set(decision.line_points.values()) == {0}
        assert decision.tier_changed is False


def test_evaluation_is_deterministic_and_does_not_touch_its_input() -> None:
    rules = _full_rules()
    state = CustomerState(stamps={"coffee": 9}, card_fills={"coffee": 1})
    first = run(rules, _full_order(), state)
    assert run(rules, _full_order(), state) == first
    assert state.stamps == {"coffee": 9} and state.card_fills == {"coffee": 1}


def test_rule_set_version_is_recorded() -> None:
    assert run(compiled(version=42), seed_003_order()).rule_set_version == 42


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Order(datetime(2026, 3, 4, 12), "UTC", ()), id="naive occurred_at"),
        pytest.param(lambda: order(line("1", "A"), line("1", "B")), id="duplicate line_ref"),
        pytest.param(lambda: line("1", "A", 0), id="quantity 0"),
        pytest.param(lambda: line("1", "A", 1, -5), id="negative price"),
        pytest.param(lambda: line("1", "A", discount=-1), id="negative discount"),
        pytest.param(lambda: line("_order", "A"), id="reserved line_ref"),
        pytest.param(lambda: line("", "A"), id="empty line_ref"),
        pytest.param(lambda: order(direct=-1), id="negative direct stamps"),
        pytest.param(lambda: RefundLine("1", -1), id="negative refund"),
    ],
)
def test_invalid_input(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidOrder):
        build()


def test_lines_given_as_a_list_become_a_tuple() -> None:
    lines: Any = [Line("1", "A", 1, 100)]
    the_order = Order(WEDNESDAY_4PM, "UTC", lines)
    assert isinstance(the_order.lines, tuple)
    assert applied(run(compiled(), the_order)) == {"base": 1}


def test_the_product_memo_never_changes_a_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rules.profiles.MEMO_LIMIT", 2)  # forces the memo to start over
    warm = _full_rules()
    orders = [
        order(line("1", f"Latte {n}", 1, 300 + n, category="drinks"), at=WEDNESDAY_4PM)
        for n in range(5)
    ]
    for the_order in orders * 2:
        assert run(warm, the_order) == run(_full_rules(), the_order)
