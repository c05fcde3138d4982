"""Base points: the points program (``spend`` or ``unit``).

- ``spend``: ``points`` per ``per_cents`` of the eligible net amount. The
  exact value of a line is net × points / per_cents; the order's base is the
  rounding (floor by default) of their sum, so 700 + 450 cents at 1 pt per
  100 cents is 11, not 7 + 4 rounded apart;
- ``unit`` / ``per: unit``: ``points`` per paid unit of each eligible line;
- ``unit`` / ``per: visit``: ``points`` once per order with an eligible line,
  on the pseudo line ``_order``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.basket import Item
from rules.tally import SCALE
from rules.types import ORDER_REF
from schemas.rules import PointsProgram, ProgramMode, Rounding, UnitBasis


@dataclass(frozen=True, slots=True)
class Program:
    spend: bool
    per_visit: bool
    points: int
    den: int  # denominator of the exact base: per_cents (spend) or 1 (unit)
    rounding: Rounding  # for base points and every multiplier
    label: str


def compile_program(program: PointsProgram) -> Program:
    spend = program.mode is ProgramMode.SPEND
    per_visit = not spend and program.per is UnitBasis.VISIT
    if spend:
        label = f"{program.points} pt per {program.per_cents} cents"
    else:
        label = f"{program.points} pt per {'visit' if per_visit else 'unit'}"
    return Program(
        spend=spend,
        per_visit=per_visit,
        points=program.points,
        den=program.per_cents if spend else 1,
        rounding=program.rounding,
        label=label,
    )


def base_numerators(items: list[Item], program: Program) -> list[int]:
    """Exact base points of each item, in the tally's unit (1 / (den × SCALE) point)."""
    points = program.points * SCALE
    if program.spend:
        return [item.net * points if item.eligible else 0 for item in items]
    if program.per_visit:
        return [points if item.ref == ORDER_REF else 0 for item in items]
    return [item.units * points if item.eligible else 0 for item in items]
