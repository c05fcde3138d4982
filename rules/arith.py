"""Integer rounding, and how a rounded total is split over lines.

Every fractional amount is a non-negative integer numerator over a positive
EVEN denominator, so no float ever enters a computation, and every rounding
mode is a floor with an offset: R(x / d) = (x + offset) // d with offset 0
(floor), d − 1 (ceil) or d / 2 (half up).

A rounded total is split over lines by running total: line i receives
R(X_i) − R(X_{i−1}), where X_i is the exact sum of lines 0..i. So the parts
are never negative, they add up exactly to the rounding of the whole
(order-level rounding: 700 + 450 cents at 1 pt per 100 cents is 11 points,
not 7 + 4 computed apart), and appending a line never changes what earlier
lines received.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from schemas.rules import Rounding


def rounding_offset(rounding: Rounding, den: int) -> int:
    if rounding is Rounding.CEIL:
        return den - 1
    if rounding is Rounding.HALF_UP:
        return den // 2
    return 0


def spread(numerators: Sequence[int], den: int) -> list[int]:
    """Per-line parts of floor(sum(numerators) / den), by running total.

    ``Tally.add`` runs the same loop with the rounding offset, inline."""
    parts: list[int] = []
    running = before = 0
    for numerator in numerators:
        running += numerator
        after = running // den
        parts.append(after - before)
        before = after
    return parts


def hundredths(multiplier: Decimal) -> int:
    """A multiplier with at most 2 decimals as an exact count of hundredths (1.25 -> 125)."""
    return int((multiplier * 100).to_integral_exact())
