"""Caps: at most ``per_order`` points per order, and ``per_day`` per customer per local day.

Applied last, after the tier. The per-day cap uses ``state.points_today``: the
points the customer already earned on the order's local calendar day (the
caller sums them). A binding cap is listed in ``rules_applied`` as a negative
contribution, taken from the lines in proportion to their points (running
total, floor), so no line goes below 0 and the lines still sum exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.arith import spread
from rules.tally import Tally
from schemas.rules import Caps


@dataclass(frozen=True, slots=True)
class CompiledCaps:
    per_order: int | None
    per_day: int | None
    order_label: str
    day_label: str


def compile_caps(caps: Caps) -> CompiledCaps:
    return CompiledCaps(
        per_order=caps.per_order,
        per_day=caps.per_day,
        order_label=f"max {caps.per_order} pts per order",
        day_label=f"max {caps.per_day} pts per day",
    )


def _cut(tally: Tally, keep: int, rule_id: str, label: str) -> None:
    points = tally.points
    total = sum(points)
    if total <= keep:
        return
    kept = spread([have * keep for have in points], total)
    tally.cut(rule_id, label, [kept[k] - have for k, have in enumerate(points)])


def apply_caps(caps: CompiledCaps, points_today: int, tally: Tally) -> None:
    if caps.per_order is not None:
        _cut(tally, caps.per_order, "cap_per_order", caps.order_label)
    if caps.per_day is not None:
        _cut(tally, max(0, caps.per_day - points_today), "cap_per_day", caps.day_label)
