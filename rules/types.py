"""Plain values in and out of the engine: orders, customer state, decisions, reversals.

Money is integer minor units (cents); points and stamps are integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from rules.errors import InvalidOrder

# Pseudo line_ref for what belongs to the order rather than to a line: per-visit
# points and stamps, direct stamps, and everything earned by an order without lines.
ORDER_REF: Final = "_order"


@dataclass(frozen=True, slots=True)
class Line:
    line_ref: str
    name: str
    quantity: int
    unit_price_cents: int
    sku: str | None = None
    category: str | None = None
    discount_cents: int = 0  # for the whole line

    def __post_init__(self) -> None:
        if not self.line_ref or self.line_ref == ORDER_REF:
            raise InvalidOrder(f"line_ref {self.line_ref!r} is empty or reserved")
        if self.quantity < 1 or self.unit_price_cents < 0 or self.discount_cents < 0:
            raise InvalidOrder(f"line {self.line_ref!r}: quantity >= 1, prices >= 0")


@dataclass(frozen=True, slots=True)
class Order:
    occurred_at: datetime  # timezone-aware
    timezone: str  # IANA zone of the store (or org), resolved by the caller
    lines: tuple[Line, ...]
    amount_cents: int | None = None  # used only when there are no lines
    store_id: str | None = None
    direct_stamps: int = 0  # POS card_type=stamp, amount=k: k stamps, no points
    stamp_card_id: str | None = None  # card for direct stamps; None: the default card

    def __post_init__(self) -> None:
        if self.occurred_at.utcoffset() is None:
            raise InvalidOrder("occurred_at must be timezone-aware")
        if not isinstance(self.lines, tuple):
            object.__setattr__(self, "lines", tuple(self.lines))
        if len({line.line_ref for line in self.lines}) != len(self.lines):
            raise InvalidOrder("line_ref values must be unique within an order")
        if (self.amount_cents or 0) < 0 or self.direct_stamps < 0:
            raise InvalidOrder("amount_cents and direct_stamps must be >= 0")


@dataclass(frozen=True, slots=True)
class CustomerState:
    tier: str | None = None  # None: computed from lifetime_points
    lifetime_points: int = 0
    stamps: Mapping[str, int] = field(default_factory=dict)  # card id -> stamps now
    card_fills: Mapping[str, int] = field(default_factory=dict)  # card id -> coupons issued
    points_today: int = 0  # points already earned on the order's local day


@dataclass(frozen=True, slots=True)
class RuleApplied:
    rule_id: str
    label: str
    points: int
    stamps: int = 0


@dataclass(frozen=True, slots=True)
class CouponGrant:
    card_id: str
    fill_number: int
    reward_name: str
    reward_type: str  # "product" | "percent" | "fixed"
    reward_value: int
    validity_days: int


@dataclass(frozen=True, slots=True)
class Decision:
    status: Literal["applied", "rejected"]
    error_code: str | None
    points: int
    stamps: Mapping[str, int]  # card id -> stamps added by this order
    card_balances: Mapping[str, int]  # card id -> stamps after filling (touched cards)
    coupons: tuple[CouponGrant, ...]
    tier: str | None  # tier after the earn
    tier_changed: bool
    rules_applied: tuple[RuleApplied, ...]
    line_points: Mapping[str, int]  # line_ref -> points; sums to ``points``
    line_stamps: Mapping[str, Mapping[str, int]]  # card id -> line_ref -> stamps
    rule_set_version: int


@dataclass(frozen=True, slots=True)
class RefundLine:
    line_ref: str
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity < 0:
            raise InvalidOrder(f"refund of line {self.line_ref!r}: quantity must be >= 0")


@dataclass(frozen=True, slots=True)
class Reversal:
    """One reversal step. ``points``, ``stamps`` and ``coupons_to_void`` are what this
    step takes back; the other fields are cumulative over the order's reversals so far
    and are what the next call reads from ``already_reversed``."""

    points: int
    stamps: Mapping[str, int]  # card id -> stamps taken back by this step
    coupons_to_void: tuple[tuple[str, int], ...]  # (card id, fill number)
    card_balances: Mapping[str, int]  # card id -> stamps after this step
    refunded_quantities: Mapping[str, int]  # line_ref -> units refunded so far
    line_points: Mapping[str, int]  # line_ref -> points reversed so far
    line_stamps: Mapping[str, Mapping[str, int]]  # card id -> line_ref -> stamps so far
    voided_coupons: tuple[tuple[str, int], ...]  # listed to void so far
    complete: bool  # everything the order earned is now reversed
    rule_set_version: int

    @property
    def total_points(self) -> int:
        return sum(self.line_points.values())
