"""Product and category bonuses, applied after base points.

Each bonus is computed from the exact base, never from another bonus, so
bonuses add up and their declaration order does not matter:

- ``multiplier`` m: base × (m − 1) over the matched lines, rounded once;
- ``fixed_per_unit`` p: p × paid units of each matched line;
- ``bundle`` "every N = P": floor(matched paid units / N) × P over the whole
  order (units of several lines combine). Bundles are formed in line order:
  a line is credited with the bundles its units complete.

Excluded lines never match.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.arith import hundredths
from rules.basket import Item
from rules.tally import Tally
from schemas.rules import Bonus, FixedPerUnitBonus, MultiplierBonus

MULTIPLIER, FIXED_PER_UNIT, BUNDLE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class CompiledBonus:
    id: str
    label: str
    kind: int
    factor: int  # multiplier: (m − 1) in hundredths
    points: int  # fixed_per_unit: per unit; bundle: per bundle
    every: int  # bundle size


# The bonuses that matched an order, each with the positions of its items.
Matched = list[tuple[CompiledBonus, list[int]]]


def compile_bonus(bonus: Bonus) -> CompiledBonus:
    if isinstance(bonus, MultiplierBonus):
        factor = hundredths(bonus.multiplier) - 100
        return CompiledBonus(bonus.id, bonus.label, MULTIPLIER, factor, 0, 1)
    if isinstance(bonus, FixedPerUnitBonus):
        return CompiledBonus(bonus.id, bonus.label, FIXED_PER_UNIT, 0, bonus.points, 1)
    return CompiledBonus(bonus.id, bonus.label, BUNDLE, 0, bonus.points, bonus.every)


def match_bonuses(items: list[Item], bonuses: tuple[CompiledBonus, ...]) -> Matched:
    if not bonuses:
        return []
    matched: dict[int, list[int]] = {}  # bonus position -> positions of matched items
    for position, item in enumerate(items):
        for bonus in item.profile.bonuses:
            matched.setdefault(bonus, []).append(position)
    return [(bonuses[bonus], matched[bonus]) for bonus in sorted(matched)]


def whole_points(rule: CompiledBonus, positions: list[int], items: list[Item]) -> list[int]:
    """Points of a fixed or bundle bonus on each of ``positions`` (bundles in line order)."""
    points = rule.points
    if rule.kind == FIXED_PER_UNIT:
        return [items[position].units * points for position in positions]
    parts: list[int] = []
    units = bundles = 0
    for position in positions:
        units += items[position].units
        now = units // rule.every
        parts.append((now - bundles) * points)
        bundles = now
    return parts


def apply_bonuses(items: list[Item], base: list[int], matched: Matched, tally: Tally) -> None:
    """Add each matched bonus (``base``: the exact base numerators of the items)."""
    for rule, positions in matched:
        if rule.kind == MULTIPLIER:
            factor = rule.factor  # hundredths: exact, as base numerators are multiples of SCALE
            numerators = [base[position] * factor // 100 for position in positions]
            tally.add(rule.id, rule.label, positions, numerators)
        else:
            tally.add_whole(rule.id, rule.label, positions, whole_points(rule, positions, items))


def exact_within(
    positions: list[int], items: list[Item], matched: Matched, tally: Tally
) -> list[int]:
    """Exact base + bonuses of the items at ``positions``, counting only the bundles
    that these items complete among themselves (call right after ``apply_bonuses``)."""
    exact, den = tally.exact, tally.den
    within = [exact[position] for position in positions]
    index: dict[int, int] | None = None  # item position -> its place in ``within``
    for rule, where in matched:
        if rule.kind != BUNDLE:
            continue
        if index is None:
            index = {position: k for k, position in enumerate(positions)}
        subset = [position for position in where if position in index]
        if not subset or len(subset) == len(where):
            continue  # what it gives these items is the same counted among themselves
        for position, part in zip(where, whole_points(rule, where, items), strict=True):
            if position in index:
                within[index[position]] -= part * den
        for position, part in zip(subset, whole_points(rule, subset, items), strict=True):
            within[index[position]] += part * den
    return within
