"""The running points of one evaluation: exact and rounded, per item, and per rule.

Every rule computes its contribution from EXACT (unrounded) values, kept as
integers in units of 1/``den`` point, where ``den`` = the program's
denominator × 10^6: room for three multiplier stages (bonuses, happy hour,
tier) of two decimals each, so every exact value stays an integer. A rule's
total is rounded once (the program's rounding mode) and split over its items
by running total (``rules.arith``). Computing from exact values keeps every
rule monotone: more spend, more units or one more line never lowers a
contribution.
"""

from __future__ import annotations

from collections.abc import Sequence

from rules.arith import rounding_offset
from rules.build import rule_applied
from rules.types import RuleApplied
from schemas.rules import Rounding

SCALE = 10**6  # 100 per multiplier stage: bonus, happy hour, tier


class Tally:
    __slots__ = ("applied", "den", "exact", "offset", "points")

    def __init__(self, size: int, program_den: int, rounding: Rounding) -> None:
        self.points = [0] * size  # rounded points per item (positions of Basket.items)
        self.exact = [0] * size  # exact points per item, in 1/den
        self.den = program_den * SCALE  # even, as rounding_offset needs
        self.offset = rounding_offset(rounding, self.den)
        self.applied: list[RuleApplied] = []  # rules that changed the points, in order

    def add(
        self, rule_id: str, label: str, positions: Sequence[int], numerators: Sequence[int]
    ) -> None:
        """A rule's exact contribution: ``numerators[k]`` / den to item ``positions[k]``,
        rounded once for the rule and split by running total."""
        exact, points, den = self.exact, self.points, self.den
        running = self.offset  # < den: the rounding of nothing is 0
        before = 0
        for k, position in enumerate(positions):
            numerator = numerators[k]
            exact[position] += numerator
            running += numerator
            after = running // den
            points[position] += after - before
            before = after
        if before:
            self.applied.append(rule_applied(rule_id, label, before))

    def add_whole(
        self, rule_id: str, label: str, positions: Sequence[int], parts: list[int]
    ) -> None:
        """A rule in whole points (nothing to round): ``parts[k]`` to item ``positions[k]``."""
        exact, points, den = self.exact, self.points, self.den
        for k, position in enumerate(positions):
            part = parts[k]
            exact[position] += part * den
            points[position] += part
        total = sum(parts)
        if total:
            self.applied.append(rule_applied(rule_id, label, total))

    def cut(self, rule_id: str, label: str, parts: list[int]) -> None:
        """Add ``parts[i]`` (<= 0) rounded points to item i (caps, applied last)."""
        points = self.points
        for position, part in enumerate(parts):
            points[position] += part
        self.applied.append(rule_applied(rule_id, label, sum(parts)))
