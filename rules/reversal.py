"""``reverse``: take back what an order earned, line by line (cancel, delete, refund).

- ``refund=None`` reverses everything still unreversed (cancel, delete).
- A line refunded cumulatively q of its Q units reverses floor(E × q / Q) of
  the points E (and of each card's stamps) it earned. The share is computed on
  the cumulative quantity, so successive partial refunds of a whole line add
  up to exactly E, and rounding favours the customer until the last unit.
- What belongs to the order (``_order``: per-visit points and stamps, direct
  stamps, an order without lines) is reversed only once the whole order is:
  by ``refund=None`` or when every line is refunded in full.
- A refund of more units than bought minus already refunded, or of an unknown
  line, raises ``RefundExceedsOrder``. Nothing is ever taken back twice:
  ``already_reversed`` (the previous step's ``Reversal``) carries the totals.
- Coupons: taking back r stamps from a card holding b < r stamps undoes
  ceil((r − b) / N) fills. That many of THIS order's coupons, newest fill
  first, are listed in ``coupons_to_void``; the caller voids each one that is
  still unused (a used coupon stays, and then takes N stamps off
  ``card_balances``, floor 0). When the order issued fewer coupons than that,
  the balance stops at 0: the merchant absorbs the rest.
- Reversal uses the rule-set version that made the decision (``RuleSetMismatch``
  otherwise) and the customer's state as it is now; the caller recomputes the
  tier with ``tier_for`` on the new lifetime points.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.compile import CompiledRuleSet
from rules.errors import RefundExceedsOrder, RuleSetMismatch
from rules.types import CustomerState, Decision, Order, RefundLine, Reversal


def _refunded_after(
    bought: Mapping[str, int], before: Mapping[str, int], refund: tuple[RefundLine, ...] | None
) -> dict[str, int]:
    if refund is None:
        return dict(bought)
    requested: dict[str, int] = {}
    for line in refund:
        requested[line.line_ref] = requested.get(line.line_ref, 0) + line.quantity
    after = {ref: before.get(ref, 0) for ref in bought}
    for ref, quantity in requested.items():
        remaining = bought.get(ref, 0) - after.get(ref, 0)
        if quantity > remaining:
            raise RefundExceedsOrder(ref, quantity, remaining)
        if quantity:
            after[ref] += quantity
    return after


def _share(
    earned: Mapping[str, int],
    bought: Mapping[str, int],
    refunded: Mapping[str, int],
    complete: bool,
) -> dict[str, int]:
    """Cumulative part of each line's earnings that is reversed."""
    share: dict[str, int] = {}
    for ref, amount in earned.items():
        quantity = bought.get(ref)
        if quantity is None:  # the order itself (_order)
            share[ref] = amount if complete else 0
        else:
            share[ref] = amount * refunded.get(ref, 0) // quantity
    return share


def _nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    return {key: count for key, count in counts.items() if count}


def _void(
    card_id: str,
    taken: int,
    original: Decision,
    voided: set[tuple[str, int]],
    rules: CompiledRuleSet,
    state: CustomerState,
) -> tuple[int, list[tuple[str, int]]]:
    """Balance after taking ``taken`` stamps off the card, and the coupons to void."""
    have = state.stamps.get(card_id, 0)
    if taken <= have:
        return have - taken, []
    slots = rules.cards_by_id[card_id].slots
    undone = -(-(taken - have) // slots)
    mine = sorted(
        (
            c.fill_number
            for c in original.coupons
            if c.card_id == card_id and (card_id, c.fill_number) not in voided
        ),
        reverse=True,
    )
    to_void = [(card_id, fill) for fill in mine[:undone]]
    return max(0, have - taken + slots * len(to_void)), to_void


def reverse(
    order: Order,
    original: Decision,
    refund: tuple[RefundLine, ...] | None,
    already_reversed: Reversal | None,
    rules: CompiledRuleSet,
    state: CustomerState,
) -> Reversal:
    if rules.version != original.rule_set_version:
        raise RuleSetMismatch(original.rule_set_version, rules.version)
    bought = {line.line_ref: line.quantity for line in order.lines}
    before = already_reversed
    refunded = _refunded_after(bought, before.refunded_quantities if before else {}, refund)
    complete = (
        refund is None
        or (before is not None and before.complete)
        or (bool(bought) and refunded == bought)
    )
    line_points = _share(original.line_points, bought, refunded, complete)
    line_stamps = {
        card: _share(per_line, bought, refunded, complete)
        for card, per_line in original.line_stamps.items()
    }
    points = sum(line_points.values()) - (before.total_points if before else 0)
    voided = set(before.voided_coupons) if before else set()
    stamps: dict[str, int] = {}
    balances: dict[str, int] = {}
    to_void: list[tuple[str, int]] = []
    for card, per_line in line_stamps.items():
        previous = before.line_stamps.get(card, {}) if before else {}
        taken = sum(per_line.values()) - sum(previous.values())
        if taken:
            stamps[card] = taken
            balances[card], card_void = _void(card, taken, original, voided, rules, state)
            to_void.extend(card_void)
    return Reversal(
        points=points,
        stamps=stamps,
        coupons_to_void=tuple(to_void),
        card_balances=balances,
        refunded_quantities=refunded,
        line_points=line_points,
        line_stamps={card: _nonzero(per_line) for card, per_line in line_stamps.items()},
        voided_coupons=(*(before.voided_coupons if before else ()), *to_void),
        complete=complete,
        rule_set_version=original.rule_set_version,
    )
