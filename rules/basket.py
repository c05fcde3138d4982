"""The order as the engine sees it: net amount, paid units and profile of each line.

- net amount of a line = quantity × unit price − line discount, never below 0;
- paid units = quantity minus the units the discount fully covers (a redeemed
  "Free Coffee" line earns neither unit points nor stamps); a line priced 0
  keeps its units unless it carries a discount;
- eligibility and matching rules come from the product's profile
  (``rules.profiles``; exclusions in ``rules.exclusions``);
- an order without lines becomes one pseudo item ``_order`` carrying
  ``amount_cents`` (0 when absent) and no units;
- a per-visit program adds the pseudo item ``_order`` after the lines, to carry
  the visit's points, when at least one line is eligible.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.profiles import Profile, Profiles
from rules.types import ORDER_REF, Order


class Item:
    __slots__ = ("eligible", "net", "profile", "ref", "units")

    def __init__(self, ref: str, net: int, units: int, profile: Profile) -> None:
        self.ref = ref
        self.net = net
        self.units = units
        self.profile = profile
        self.eligible = profile.eligible


@dataclass(slots=True)
class Basket:
    items: list[Item]
    total_cents: int  # every line after discounts; min_amount_cents is judged on it
    eligible_cents: int
    visit: bool  # an eligible line, or an order without lines


def paid_units(quantity: int, unit_price_cents: int, discount_cents: int) -> int:
    """Units the discount does not fully cover (never fewer when the price rises)."""
    if unit_price_cents <= 0:
        return 0 if discount_cents else quantity
    return quantity - min(quantity, discount_cents // unit_price_cents)


def basket_of(order: Order, profiles: Profiles, per_visit: bool) -> Basket:
    if not order.lines:
        amount = order.amount_cents or 0
        item = Item(ORDER_REF, amount, 0, profiles.order)
        return Basket(items=[item], total_cents=amount, eligible_cents=amount, visit=True)
    items: list[Item] = []
    total = eligible_cents = 0
    visit = False
    profile_of = profiles.of
    for line in order.lines:
        quantity, price, discount = line.quantity, line.unit_price_cents, line.discount_cents
        if discount:
            net = max(0, quantity * price - discount)
            units = paid_units(quantity, price, discount)
        else:
            net, units = quantity * price, quantity
        item = Item(line.line_ref, net, units, profile_of(line.sku, line.name, line.category))
        items.append(item)
        total += net
        if item.eligible:
            eligible_cents += net
            visit = True
    if per_visit and visit:
        items.append(Item(ORDER_REF, 0, 0, profiles.order))
    return Basket(items=items, total_cents=total, eligible_cents=eligible_cents, visit=visit)
