"""Happy hours: a multiplier on the points of in-scope lines in a local weekly window.

- The window is judged at the order's ``occurred_at`` converted to the happy
  hour's zone, or to the order's zone (the store's, resolved by the caller).
- Times are wall-clock: 15:00-17:00 means 15:00-17:00 local on both sides of a
  DST change. Start is inclusive, end exclusive.
- A window with end <= start crosses midnight, and ``weekdays`` name the day it
  STARTS: 22:00-02:00 on Monday covers Monday 22:00 to Tuesday 01:59:59, so an
  order at 01:30 on Tuesday belongs to Monday's window.
- The multiplier m adds (base + bonuses) × (m − 1) on the lines in scope (no
  scope: every eligible line, and the ``_order`` pseudo line), from exact
  values, rounded once per happy hour. A bundle counts for the bundles that
  in-scope units complete among themselves. Happy hours do not stack: a line
  gets the highest active multiplier (the first declared on a tie).
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules.arith import hundredths
from rules.basket import Item
from rules.bonuses import Matched, exact_within
from rules.errors import InvalidOrder
from rules.tally import Tally
from rules.types import Order
from schemas.rules import HappyHour, Weekday

_DAY_NUMBER = {day: number for number, day in enumerate(Weekday)}  # mon = 0, as weekday()


@dataclass(frozen=True, slots=True)
class CompiledHappyHour:
    id: str
    label: str
    days: frozenset[int]  # datetime.weekday() numbers of the days windows start
    start: int  # seconds after local midnight
    end: int
    zone: ZoneInfo | None  # None: the order's zone
    factor: int  # (m − 1) in hundredths; the scope lives in the product profiles

    def active_at(self, local_day: int, local_seconds: int) -> bool:
        if self.start < self.end:
            return local_day in self.days and self.start <= local_seconds < self.end
        if local_seconds >= self.start:
            return local_day in self.days
        return local_seconds < self.end and (local_day - 1) % 7 in self.days


def _seconds(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def compile_happy_hour(happy_hour: HappyHour) -> CompiledHappyHour:
    return CompiledHappyHour(
        id=happy_hour.id,
        label=happy_hour.label,
        days=frozenset(_DAY_NUMBER[day] for day in happy_hour.weekdays),
        start=_seconds(happy_hour.start),
        end=_seconds(happy_hour.end),
        zone=None if happy_hour.timezone is None else ZoneInfo(happy_hour.timezone),
        factor=hundredths(happy_hour.multiplier) - 100,
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)  # cached by zoneinfo after the first load
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidOrder(f"unknown time zone {name!r}") from exc


def active_happy_hours(order: Order, happy_hours: tuple[CompiledHappyHour, ...]) -> list[int]:
    """Positions of the happy hours whose window contains the order's local time."""
    local_clock: dict[ZoneInfo | None, tuple[int, int]] = {}  # zone -> (weekday, seconds)
    active: list[int] = []
    for position, happy_hour in enumerate(happy_hours):
        clock = local_clock.get(happy_hour.zone)
        if clock is None:
            local = order.occurred_at.astimezone(happy_hour.zone or _zone(order.timezone))
            clock = (local.weekday(), local.hour * 3600 + local.minute * 60 + local.second)
            local_clock[happy_hour.zone] = clock
        if happy_hour.active_at(*clock):
            active.append(position)
    return active


def apply_happy_hours(
    items: list[Item],
    order: Order,
    happy_hours: tuple[CompiledHappyHour, ...],
    matched: Matched,
    tally: Tally,
) -> None:
    """Add the active happy hours; call right after the bonuses."""
    if not happy_hours:
        return
    active = active_happy_hours(order, happy_hours)
    if not active:
        return
    # Highest multiplier first; sorted() is stable, so the first declared wins a tie.
    ranked = active if len(active) == 1 else sorted(active, key=lambda k: -happy_hours[k].factor)
    where: dict[int, list[int]] = {}  # happy hour -> positions of the items it gets
    for position, item in enumerate(items):
        in_scope = item.profile.in_scope
        for k in ranked:
            if in_scope[k]:
                where.setdefault(k, []).append(position)
                break
    contributions = []
    for k in sorted(where):
        happy_hour, positions = happy_hours[k], where[k]
        factor = happy_hour.factor
        within = exact_within(positions, items, matched, tally)
        contributions.append((happy_hour, positions, [v * factor // 100 for v in within]))
    for happy_hour, positions, numerators in contributions:
        tally.add(happy_hour.id, happy_hour.label, positions, numerators)
