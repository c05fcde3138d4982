"""Tiers: ordered thresholds on lifetime points, each with a multiplier.

- The earn uses the customer's CURRENT tier: ``state.tier`` when it names a
  tier of the rule set, otherwise the tier its ``lifetime_points`` reach.
- The multiplier m adds (base + bonuses + happy hour) × (m − 1) on every
  line, from exact values, rounded once.
- The tier after the earn is ``tier_for(lifetime_points + points)``; after a
  reversal the caller calls ``tier_for`` with the new lifetime points.
- Below the lowest threshold a customer has no tier (None, multiplier 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rules.arith import hundredths
from rules.tally import Tally
from rules.types import CustomerState
from schemas.rules import Tier

if TYPE_CHECKING:
    from rules.compile import CompiledRuleSet


@dataclass(frozen=True, slots=True)
class CompiledTier:
    name: str
    threshold: int
    factor: int  # (m − 1) in hundredths
    label: str


@dataclass(frozen=True, slots=True)
class Tiers:
    ladder: tuple[CompiledTier, ...]  # ascending thresholds
    by_name: Mapping[str, CompiledTier]

    def reached(self, lifetime_points: int) -> CompiledTier | None:
        for tier in reversed(self.ladder):
            if lifetime_points >= tier.threshold:
                return tier
        return None

    def current(self, state: CustomerState) -> CompiledTier | None:
        if state.tier is not None:
            named = self.by_name.get(state.tier)
            if named is not None:
                return named
        return self.reached(state.lifetime_points)


def compile_tiers(tiers: tuple[Tier, ...]) -> Tiers:
    ladder = tuple(
        CompiledTier(
            name=tier.name,
            threshold=tier.threshold,
            factor=hundredths(tier.multiplier) - 100,
            label=f"{tier.name} x{tier.multiplier.normalize():f}",
        )
        for tier in sorted(tiers, key=lambda tier: tier.threshold)
    )
    return Tiers(ladder=ladder, by_name={tier.name: tier for tier in ladder})


def tier_for(lifetime_points: int, rules: CompiledRuleSet) -> str | None:
    """The tier a customer with these lifetime points is in (None below every threshold)."""
    tier = rules.tiers.reached(lifetime_points)
    return None if tier is None else tier.name


def apply_tier(tier: CompiledTier | None, tally: Tally) -> None:
    if tier is None or not tier.factor:
        return
    factor = tier.factor
    numerators = [value * factor // 100 for value in tally.exact]  # exact: see rules.tally
    tally.add("tier", tier.label, range(len(numerators)), numerators)
