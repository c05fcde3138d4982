"""``evaluate``: one order against one compiled rule set, for one customer state.

Order of application, each step reading the result of the previous ones:

1. ``min_amount_cents``: an order whose total (after line discounts) is below
   it is rejected with ``amount_too_low`` and earns nothing;
2. base points (program), 3. bonuses, 4. happy hour, 5. tier, 6. caps;
7. stamps (per visit, per item), then card fills and coupons.

An order with ``direct_stamps`` earns those stamps on its card and nothing
else (no points, no minimum amount); an unknown card rejects it with
``stamp_card_not_found``. ``evaluate`` is pure: same input, same decision.
"""

from __future__ import annotations

from rules.base import base_numerators
from rules.basket import basket_of
from rules.bonuses import apply_bonuses, match_bonuses
from rules.build import decision
from rules.caps import apply_caps
from rules.compile import CompiledRuleSet
from rules.happy_hour import apply_happy_hours
from rules.stamps import earned_stamps, fill_cards
from rules.tally import Tally
from rules.tiers import CompiledTier, apply_tier
from rules.types import ORDER_REF, CustomerState, Decision, Order, RuleApplied

AMOUNT_TOO_LOW = "amount_too_low"
STAMP_CARD_NOT_FOUND = "stamp_card_not_found"


def _tier_before(state: CustomerState, current: CompiledTier | None) -> str | None:
    if state.tier is not None:
        return state.tier
    return None if current is None else current.name


def _no_points(order: Order) -> dict[str, int]:
    return {line.line_ref: 0 for line in order.lines} if order.lines else {ORDER_REF: 0}


def _rejected(order: Order, rules: CompiledRuleSet, tier: str | None, error_code: str) -> Decision:
    return Decision(
        status="rejected",
        error_code=error_code,
        points=0,
        stamps={},
        card_balances={},
        coupons=(),
        tier=tier,
        tier_changed=False,
        rules_applied=(),
        line_points=_no_points(order),
        line_stamps={},
        rule_set_version=rules.version,
    )


def _applied(
    order: Order,
    state: CustomerState,
    rules: CompiledRuleSet,
    tier_before: str | None,
    line_points: dict[str, int],
    points_applied: list[RuleApplied],
    line_stamps: dict[str, dict[str, int]],
) -> Decision:
    points = sum(line_points.values())
    stamps, balances, coupons, stamps_applied = fill_cards(line_stamps, rules.cards_by_id, state)
    tier = rules.tiers.reached(state.lifetime_points + points)
    tier_after = None if tier is None else tier.name
    return decision(
        "applied",
        None,  # error_code
        points,
        stamps,
        balances,
        tuple(coupons),
        tier_after,
        tier_after != tier_before,  # tier_changed
        (*points_applied, *stamps_applied),
        line_points,
        line_stamps,
        rules.version,
    )


def evaluate(order: Order, state: CustomerState, rules: CompiledRuleSet) -> Decision:
    current = rules.tiers.current(state)
    tier_before = _tier_before(state, current)
    if order.direct_stamps:
        card_id = order.stamp_card_id or rules.default_card
        if card_id is None or card_id not in rules.cards_by_id:
            return _rejected(order, rules, tier_before, STAMP_CARD_NOT_FOUND)
        direct = {card_id: {ORDER_REF: order.direct_stamps}}
        return _applied(order, state, rules, tier_before, _no_points(order), [], direct)

    program = rules.program
    basket = basket_of(order, rules.profiles, program.per_visit)
    if basket.total_cents < rules.min_amount_cents:
        return _rejected(order, rules, tier_before, AMOUNT_TOO_LOW)
    items = basket.items
    tally = Tally(len(items), program.den, program.rounding)
    base = base_numerators(items, program)
    tally.add("base", program.label, range(len(items)), base)
    matched = match_bonuses(items, rules.bonuses)
    apply_bonuses(items, base, matched, tally)
    apply_happy_hours(items, order, rules.happy_hours, matched, tally)
    apply_tier(current, tally)
    apply_caps(rules.caps, state.points_today, tally)
    points = tally.points
    line_points = {item.ref: points[k] for k, item in enumerate(items)}
    line_stamps = earned_stamps(basket, rules.cards)
    return _applied(order, state, rules, tier_before, line_points, tally.applied, line_stamps)
