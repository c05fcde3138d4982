"""Stamp cards: earning stamps, filling cards, issuing coupons.

- ``visit``: one stamp per order with an eligible line (or without lines) whose
  eligible amount reaches ``min_spend_cents``; on the pseudo line ``_order``;
- ``item``: one stamp per paid unit of each eligible line the card matches;
- ``direct``: only direct stamps (POS ``card_type=stamp, amount=k``).
  Direct stamps may target a card of any mode; an order carrying them earns
  nothing else.

A card with N slots fills every N stamps: each fill issues one coupon, numbered
``card_fills[card] + 1, + 2, …`` so (card, fill number) is unique per
customer, and the rest carries over. One order can fill several cards, and one
card several times. Stamps are not multiplied by happy hours or tiers, nor capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rules.basket import Basket
from rules.build import coupon_grant, rule_applied
from rules.matching import Matcher, compile_match
from rules.types import ORDER_REF, CouponGrant, CustomerState, RuleApplied
from schemas.rules import StampCard, StampEarnMode

VISIT, ITEM, DIRECT = 0, 1, 2
_MODES = {StampEarnMode.VISIT: VISIT, StampEarnMode.ITEM: ITEM, StampEarnMode.DIRECT: DIRECT}


@dataclass(frozen=True, slots=True)
class CompiledCard:
    id: str
    label: str
    slots: int
    earn: int
    min_spend_cents: int
    reward_name: str
    reward_type: str
    reward_value: int
    validity_days: int


def compile_card(card: StampCard) -> CompiledCard:
    return CompiledCard(
        id=card.id,
        label=card.label,
        slots=card.slots,
        earn=_MODES[card.earn],
        min_spend_cents=card.min_spend_cents,
        reward_name=card.reward.name,
        reward_type=card.reward.type.value,
        reward_value=card.reward.value,
        validity_days=card.reward.validity_days,
    )


def card_matcher(card: StampCard) -> Matcher | None:
    """What an item card stamps (for the product profiles); None for other cards."""
    return compile_match(card.match) if card.earn is StampEarnMode.ITEM else None


def earned_stamps(basket: Basket, cards: tuple[CompiledCard, ...]) -> dict[str, dict[str, int]]:
    """card id -> line_ref -> stamps this order earns (cards without stamps left out)."""
    if not cards:
        return {}
    per_card: dict[int, dict[str, int]] = {}
    for item in basket.items:
        if item.units:
            for position in item.profile.cards:
                per_card.setdefault(position, {})[item.ref] = item.units
    earned: dict[str, dict[str, int]] = {}
    for position, card in enumerate(cards):
        if card.earn == VISIT:
            if basket.visit and basket.eligible_cents >= card.min_spend_cents:
                earned[card.id] = {ORDER_REF: 1}
        elif position in per_card:
            earned[card.id] = per_card[position]
    return earned


Filled = tuple[dict[str, int], dict[str, int], list[CouponGrant], list[RuleApplied]]


def fill_cards(
    line_stamps: Mapping[str, Mapping[str, int]],
    cards: Mapping[str, CompiledCard],
    state: CustomerState,
) -> Filled:
    """Stamps added and balance after, per card; coupons issued; the cards' rules_applied."""
    added_to: dict[str, int] = {}
    balances: dict[str, int] = {}
    coupons: list[CouponGrant] = []
    applied: list[RuleApplied] = []
    for card_id, per_line in line_stamps.items():
        card = cards[card_id]
        added = sum(per_line.values())
        fills, balances[card_id] = divmod(state.stamps.get(card_id, 0) + added, card.slots)
        added_to[card_id] = added
        applied.append(rule_applied(card_id, card.label, 0, added))
        issued = state.card_fills.get(card_id, 0)
        for fill_number in range(issued + 1, issued + fills + 1):
            coupons.append(
                coupon_grant(
                    card_id,
                    fill_number,
                    card.reward_name,
                    card.reward_type,
                    card.reward_value,
                    card.validity_days,
                )
            )
    return added_to, balances, coupons, applied
