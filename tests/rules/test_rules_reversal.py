"""reverse: line by line, proportional, cumulative, never more than earned; coupon voiding."""

from __future__ import annotations

import pytest
from rules_factories import card, compiled, fixed, line, order, run

from rules import (
    ORDER_REF,
    CompiledRuleSet,
    CustomerState,
    Decision,
    Order,
    RefundExceedsOrder,
    RefundLine,
    Reversal,
    RuleSetMismatch,
    reverse,
)

DRINKS = {"categories": ["drinks"]}


def _rules(version: int = 1) -> CompiledRuleSet:
    return compiled(
        version=version,
        bonuses=[fixed("beans", 20, categories=["beans"])],
        stamp_cards=[card("coffee", 10, "item", on=DRINKS), card("visits", 5, "visit")],
    )


def _three_lines() -> Order:
    return order(
        line("1", "Latte", 3, 334, category="drinks"),
        line("2", "Cake", 1, 450, category="food"),
        line("3", "Beans", 1, 1200, category="beans"),
    )


def _after(decision: Decision, before: CustomerState | None = None) -> CustomerState:
    """The customer's state right after the decision was applied."""
    before = before or CustomerState()
    stamps = {**before.stamps, **decision.card_balances}
    fills = dict(before.card_fills)
    for coupon in decision.coupons:
        fills[coupon.card_id] = max(fills.get(coupon.card_id, 0), coupon.fill_number)
    return CustomerState(
        lifetime_points=before.lifetime_points + decision.points, stamps=stamps, card_fills=fills
    )


def test_partial_refund_of_one_of_three_lines() -> None:
    rules, the_order = _rules(), _three_lines()
    decision = run(rules, the_order)
    assert decision.line_points == {"1": 10, "2": 4, "3": 32}
    reversal = reverse(the_order, decision, (RefundLine("2", 1),), None, rules, _after(decision))
    assert reversal.points == 4
    assert reversal.stamps == {}  # the cake earned no stamp; the visit stays
    assert reversal.refunded_quantities == {"1": 0, "2": 1, "3": 0}
    assert reversal.complete is False


def test_successive_partial_refunds_of_a_line_add_up_to_what_it_earned() -> None:
    rules, the_order = _rules(), _three_lines()
    decision = run(rules, the_order)
    state = _after(decision)
    steps: list[Reversal] = []
    previous: Reversal | None = None
    for _ in range(3):
        previous = reverse(the_order, decision, (RefundLine("1", 1),), previous, rules, state)
        steps.append(previous)
        state = CustomerState(stamps={k: state.stamps[k] - v for k, v in previous.stamps.items()})
    # floor(10 x q / 3) on the cumulative quantity: 3, 6, 10
    assert [s.points for s in steps] == [3, 3, 4]
    assert [s.stamps.get("coffee", 0) for s in steps] == [1, 1, 1]
    assert steps[-1].line_points["1"] == 10
    assert steps[-1].complete is False
    with pytest.raises(RefundExceedsOrder) as raised:
        reverse(the_order, decision, (RefundLine("1", 1),), previous, rules, state)
    assert (raised.value.line_ref, raised.value.requested, raised.value.remaining) == ("1", 1, 0)


def test_refunding_every_line_completes_the_order_and_takes_the_visit_back() -> None:
    rules, the_order = _rules(), _three_lines()
    decision = run(rules, the_order)
    first = reverse(
        the_order, decision, (RefundLine("1", 3), RefundLine("2", 1)), None, rules, _after(decision)
    )
    assert (first.complete, first.stamps) == (False, {"coffee": 3})
    last = reverse(the_order, decision, (RefundLine("3", 1),), first, rules, _after(decision))
    assert last.complete is True
    assert last.stamps == {"visits": 1}
    assert first.points + last.points == decision.points


def test_cancel_reverses_everything_and_is_idempotent() -> None:
    rules, the_order = _rules(), _three_lines()
    decision = run(rules, the_order)
    state = _after(decision)
    cancel = reverse(the_order, decision, None, None, rules, state)
    assert cancel.points == decision.points
    assert cancel.stamps == decision.stamps == {"coffee": 3, "visits": 1}
    assert cancel.line_points == decision.line_points
    assert cancel.line_stamps == {"coffee": {"1": 3}, "visits": {ORDER_REF: 1}}
    assert cancel.complete is True
    again = reverse(the_order, decision, None, cancel, rules, state)
    assert (again.points, again.stamps, again.coupons_to_void) == (0, {}, ())
    with pytest.raises(RefundExceedsOrder):
        reverse(the_order, decision, (RefundLine("2", 1),), cancel, rules, state)


@pytest.mark.parametrize(
    ("refund", "line_ref", "remaining"),
    [
        pytest.param((RefundLine("1", 4),), "1", 3, id="more than bought"),
        pytest.param((RefundLine("1", 2), RefundLine("1", 2)), "1", 3, id="repeated in one call"),
        pytest.param((RefundLine("9", 1),), "9", 0, id="unknown line"),
    ],
)
def test_refund_exceeding_the_order(
    refund: tuple[RefundLine, ...], line_ref: str, remaining: int
) -> None:
    rules, the_order = _rules(), _three_lines()
    decision = run(rules, the_order)
    with pytest.raises(RefundExceedsOrder) as raised:
        reverse(the_order, decision, refund, None, rules, _after(decision))
    assert (raised.value.line_ref, raised.value.remaining) == (line_ref, remaining)
    assert raised.value.code == "refund_exceeds_order"


def _direct_card_rules() -> CompiledRuleSet:
    return compiled(stamp_cards=[card("coffee", 10, "direct")], default_stamp_card="coffee")


@pytest.mark.parametrize(
    ("balance_now", "to_void", "balance_after"),
    [
        pytest.param(1, [("coffee", 6), ("coffee", 5)], 3, id="right after: both fills undone"),
        pytest.param(9, [("coffee", 6)], 1, id="8 stamps earned since: one fill undone"),
        pytest.param(18, [], 0, id="enough stamps since: no fill undone"),
    ],
)
def test_reversed_stamps_void_the_fills_they_undo(
    balance_now: int, to_void: list[tuple[str, int]], balance_after: int
) -> None:
    rules = _direct_card_rules()
    before = CustomerState(stamps={"coffee": 3}, card_fills={"coffee": 4})
    the_order = order(direct=18)
    decision = run(rules, the_order, before)
    assert [c.fill_number for c in decision.coupons] == [5, 6]
    now = CustomerState(stamps={"coffee": balance_now}, card_fills={"coffee": 6})
    reversal = reverse(the_order, decision, None, None, rules, now)
    assert reversal.stamps == {"coffee": 18}
    assert list(reversal.coupons_to_void) == to_void
    assert reversal.card_balances == {"coffee": balance_after}


def test_partial_stamp_reversal_voids_the_order_coupon_once() -> None:
    rules = compiled(stamp_cards=[card("coffee", 10, "item", on=DRINKS)])
    the_order = order(line("1", "Latte", 3, 300, category="drinks"))
    decision = run(rules, the_order, CustomerState(stamps={"coffee": 7}))
    assert (decision.card_balances, len(decision.coupons)) == ({"coffee": 0}, 1)
    first = reverse(the_order, decision, (RefundLine("1", 1),), None, rules, _after(decision))
    assert (first.coupons_to_void, first.card_balances) == ((("coffee", 1),), {"coffee": 9})
    second = reverse(
        the_order,
        decision,
        (RefundLine("1", 1),),
        first,
        rules,
        CustomerState(stamps={"coffee": 9}),
    )
    assert (second.coupons_to_void, second.card_balances) == ((), {"coffee": 8})
    assert second.voided_coupons == (("coffee", 1),)


def test_stamps_spent_elsewhere_stop_the_balance_at_zero() -> None:
    rules = compiled(stamp_cards=[card("coffee", 10, "item", on=DRINKS)])
    the_order = order(line("1", "Latte", 3, 300, category="drinks"))
    decision = run(rules, the_order)
    assert decision.coupons == ()
    reversal = reverse(the_order, decision, None, None, rules, CustomerState(stamps={"coffee": 1}))
    assert (reversal.stamps, reversal.card_balances) == ({"coffee": 3}, {"coffee": 0})


def test_order_without_lines_reverses_only_as_a_whole() -> None:
    rules = compiled()
    the_order = order(amount=2500)
    decision = run(rules, the_order)
    with pytest.raises(RefundExceedsOrder):
        reverse(the_order, decision, (RefundLine(ORDER_REF, 1),), None, rules, CustomerState())
    partial = reverse(the_order, decision, (), None, rules, CustomerState())
    assert (partial.points, partial.complete) == (0, False)
    assert reverse(the_order, decision, None, None, rules, CustomerState()).points == 25


def test_rejected_order_reverses_nothing() -> None:
    rules = compiled(min_amount_cents=1000)
    the_order = order(line("1", "A", 1, 500))
    decision = run(rules, the_order)
    reversal = reverse(the_order, decision, None, None, rules, CustomerState())
    assert (reversal.points, reversal.stamps, reversal.complete) == (0, {}, True)


def test_reversal_needs_the_rule_set_version_of_the_decision() -> None:
    the_order = _three_lines()
    decision = run(_rules(version=3), the_order)
    with pytest.raises(RuleSetMismatch):
        reverse(the_order, decision, None, None, _rules(version=4), CustomerState())
