"""Stamp cards: visit, item and direct earning, fills, coupons, carry-over."""

from __future__ import annotations

import pytest
from rules_factories import card, compiled, line, order, run

from rules import ORDER_REF, CouponGrant, CustomerState, compile_rule_set
from schemas.rules import RuleSet

DRINKS = {"categories": ["drinks"]}


def test_ten_slot_card_with_three_stamps_receiving_eighteen() -> None:
    rules = compiled(stamp_cards=[card("coffee", 10, "direct")], default_stamp_card="coffee")
    state = CustomerState(stamps={"coffee": 3}, card_fills={"coffee": 4})
    decision = run(rules, order(direct=18), state)
    assert decision.points == 0
    assert decision.stamps == {"coffee": 18}
    assert decision.card_balances == {"coffee": 1}
    assert [(c.card_id, c.fill_number) for c in decision.coupons] == [("coffee", 5), ("coffee", 6)]
    assert decision.coupons[0] == CouponGrant("coffee", 5, "Free Coffee", "product", 0, 30)
    assert decision.line_stamps == {"coffee": {ORDER_REF: 18}}


def test_item_card_one_stamp_per_paid_drink() -> None:
    rules = compiled(stamp_cards=[card("coffee", 10, "item", on=DRINKS)])
    decision = run(
        rules,
        order(
            line("1", "Cappuccino", 2, 350, category="drinks"),
            line("2", "Cake", 1, 450, category="food"),
            line("3", "Latte", 1, 400, category="Drinks"),
            line("4", "Free Coffee", 1, 300, category="drinks", discount=300),
        ),
    )
    assert decision.line_stamps == {"coffee": {"1": 2, "3": 1}}
    assert decision.stamps == {"coffee": 3}
    assert decision.card_balances == {"coffee": 3}
    assert decision.coupons == ()
    assert [(r.rule_id, r.points, r.stamps) for r in decision.rules_applied][-1] == (
        "coffee",
        0,
        3,
    )


@pytest.mark.parametrize(
    ("amount", "stamped"),
    [
        pytest.param(499, False, id="below min spend"),
        pytest.param(500, True, id="at min spend"),
    ],
)
def test_visit_card_min_spend(amount: int, stamped: bool) -> None:
    rules = compiled(stamp_cards=[card("visits", 5, "visit", min_spend=500)])
    decision = run(rules, order(line("1", "A", 1, amount)))
    assert decision.line_stamps == ({"visits": {ORDER_REF: 1}} if stamped else {})


def test_one_order_fills_several_cards() -> None:
    rules = compiled(
        stamp_cards=[card("coffee", 3, "item", on=DRINKS), card("visits", 2, "visit")],
    )
    state = CustomerState(stamps={"coffee": 2, "visits": 1}, card_fills={"visits": 7})
    decision = run(rules, order(line("1", "Latte", 4, 300, category="drinks")), state)
    assert decision.card_balances == {"coffee": 0, "visits": 0}
    assert [(c.card_id, c.fill_number) for c in decision.coupons] == [
        ("coffee", 1),
        ("coffee", 2),
        ("visits", 8),
    ]


def test_direct_stamps_go_to_the_named_card_and_earn_no_points() -> None:
    rules = compiled(
        stamp_cards=[card("coffee", 10, "item", on=DRINKS), card("tea", 8, "direct")],
        default_stamp_card="coffee",
    )
    decision = run(
        rules, order(line("1", "Latte", 1, 5000, category="drinks"), direct=2, card="tea")
    )
    assert (decision.points, decision.stamps) == (0, {"tea": 2})
    assert decision.line_points == {"1": 0}


@pytest.mark.parametrize(
    ("default", "card_id"),
    [
        pytest.param(None, None, id="no default card"),
        pytest.param("coffee", "nope", id="unknown card"),
    ],
)
def test_direct_stamps_without_a_card_are_rejected(
    default: str | None, card_id: str | None
) -> None:
    rules = compiled(stamp_cards=[card("coffee", 10, "direct")], default_stamp_card=default)
    decision = run(rules, order(direct=1, card=card_id))
    assert (decision.status, decision.error_code) == ("rejected", "stamp_card_not_found")
    assert decision.stamps == {}


def test_default_rule_set_takes_loyalite_stamps_out_of_the_box() -> None:
    rules = compile_rule_set(RuleSet.default(), 0)
    decision = run(rules, order(direct=10), CustomerState(stamps={"default": 0}))
    assert decision.card_balances == {"default": 0}
    assert [c.reward_name for c in decision.coupons] == ["Free Coffee"]
    assert run(rules, order(amount=2550)).points == 25
