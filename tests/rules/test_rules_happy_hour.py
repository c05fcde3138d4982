"""Happy hours: weekly local windows, midnight crossing, time zones, DST, scope, no stacking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from rules_factories import applied, bundle, compiled, happy_hour, line, order, run

from rules import InvalidOrder

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
DRINKS = {"categories": ["drinks"]}


def _drinks_and_cake(at: datetime, tz: str = "UTC") -> Any:
    return order(
        line("1", "Latte", 2, 350, category="drinks"),
        line("2", "Cake", 1, 450, category="food"),
        at=at,
        tz=tz,
    )


def _hh_points(hh: dict[str, Any], at: datetime, tz: str = "UTC") -> int:
    decision = run(compiled(happy_hours=[hh]), _drinks_and_cake(at, tz))
    return applied(decision).get(hh["id"], 0)


AFTERNOON = happy_hour("afternoon", WEEKDAYS, "15:00", "17:00", scope=DRINKS)
LATE_MONDAY = happy_hour("late", ["mon"], "22:00", "02:00")


@pytest.mark.parametrize(
    ("hh", "at", "tz", "points"),
    [
        pytest.param(AFTERNOON, datetime(2026, 3, 4, 15, 30, tzinfo=UTC), "UTC", 7, id="inside"),
        pytest.param(AFTERNOON, datetime(2026, 3, 4, 15, 0, tzinfo=UTC), "UTC", 7, id="at start"),
        pytest.param(AFTERNOON, datetime(2026, 3, 4, 17, 0, tzinfo=UTC), "UTC", 0, id="at end"),
        pytest.param(
            AFTERNOON, datetime(2026, 3, 4, 16, 59, 59, tzinfo=UTC), "UTC", 7, id="last second"
        ),
        pytest.param(AFTERNOON, datetime(2026, 3, 7, 15, 30, tzinfo=UTC), "UTC", 0, id="saturday"),
        pytest.param(
            AFTERNOON,
            datetime(2026, 3, 4, 14, 30, tzinfo=UTC),
            "Europe/Paris",
            7,
            id="judged in the store's zone: 14:30 UTC is 15:30 in Paris",
        ),
        pytest.param(
            AFTERNOON,
            datetime(2026, 3, 4, 15, 30, tzinfo=timezone(timedelta(hours=-5))),
            "Europe/Paris",
            0,
            id="the offset of occurred_at does not matter, the zone does (21:30 Paris)",
        ),
        pytest.param(
            {**AFTERNOON, "timezone": "America/New_York"},
            datetime(2026, 3, 4, 20, 30, tzinfo=UTC),
            "Europe/Paris",
            7,
            id="a happy hour may override the zone",
        ),
        pytest.param(
            LATE_MONDAY,
            datetime(2026, 3, 10, 1, 30, tzinfo=UTC),
            "UTC",
            11,
            id="22:00-02:00 Monday: Tuesday 01:30 belongs to Monday's window",
        ),
        pytest.param(
            LATE_MONDAY, datetime(2026, 3, 9, 23, 0, tzinfo=UTC), "UTC", 11, id="Monday 23:00"
        ),
        pytest.param(
            LATE_MONDAY,
            datetime(2026, 3, 9, 1, 30, tzinfo=UTC),
            "UTC",
            0,
            id="Monday 01:30 belongs to Sunday's window",
        ),
        pytest.param(
            LATE_MONDAY, datetime(2026, 3, 10, 2, 0, tzinfo=UTC), "UTC", 0, id="Tuesday 02:00"
        ),
        pytest.param(
            LATE_MONDAY,
            datetime(2026, 3, 10, 0, 30, tzinfo=UTC),
            "Europe/Paris",
            11,
            id="crossing midnight, local: 00:30 UTC Tue = 01:30 Paris Tue",
        ),
    ],
)
def test_window(hh: dict[str, Any], at: datetime, tz: str, points: int) -> None:
    assert _hh_points(hh, at, tz) == points


@pytest.mark.parametrize(
    ("at", "points"),
    [
        pytest.param(
            datetime(2026, 3, 6, 19, 30, tzinfo=UTC), 0, id="Fri before DST: 19:30 UTC = 14:30 EST"
        ),
        pytest.param(
            datetime(2026, 3, 6, 20, 30, tzinfo=UTC), 7, id="Fri before DST: 20:30 UTC = 15:30 EST"
        ),
        pytest.param(
            datetime(2026, 3, 9, 19, 30, tzinfo=UTC), 7, id="Mon after DST: 19:30 UTC = 15:30 EDT"
        ),
        pytest.param(
            datetime(2026, 3, 9, 21, 30, tzinfo=UTC), 0, id="Mon after DST: 21:30 UTC = 17:30 EDT"
        ),
    ],
)
def test_dst_windows_are_wall_clock(at: datetime, points: int) -> None:
    assert _hh_points(AFTERNOON, at, "America/New_York") == points


@pytest.mark.parametrize(
    "at",
    [
        pytest.param(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), id="02:30 CEST, first pass"),
        pytest.param(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), id="02:30 CET, second pass"),
    ],
)
def test_repeated_wall_clock_hour_is_inside_both_times(at: datetime) -> None:
    night = happy_hour("night", ["sun"], "02:00", "03:00")
    assert _hh_points(night, at, "Europe/Paris") == 11


def test_happy_hours_do_not_stack_the_highest_wins() -> None:
    rules = compiled(
        happy_hours=[
            happy_hour("all-x2", WEEKDAYS, "00:00", "23:59", "2"),
            happy_hour("drinks-x3", WEEKDAYS, "00:00", "23:59", "3", scope=DRINKS),
        ]
    )
    decision = run(rules, _drinks_and_cake(datetime(2026, 3, 4, 12, tzinfo=UTC)))
    # drinks: base 7 x (3-1) = 14; cake: base 4.5 x (2-1) = 4
    assert applied(decision) == {"base": 11, "all-x2": 4, "drinks-x3": 14}


def test_happy_hour_multiplies_base_and_bonuses() -> None:
    rules = compiled(
        bonuses=[bundle("cap", 2, 15, names=["Latte"])],
        happy_hours=[happy_hour("all", WEEKDAYS, "00:00", "23:59")],
    )
    decision = run(rules, _drinks_and_cake(datetime(2026, 3, 4, 12, tzinfo=UTC)))
    assert applied(decision) == {"base": 11, "cap": 15, "all": 26}  # (11.5 + 15) x 1 -> 26


def test_scoped_happy_hour_counts_the_bundles_its_lines_complete() -> None:
    rules = compiled(
        bonuses=[bundle("cap", 2, 15, names=["Cappuccino"])],
        happy_hours=[happy_hour("drinks", WEEKDAYS, "00:00", "23:59", scope=DRINKS)],
    )
    decision = run(
        rules,
        order(
            line("1", "Cappuccino", 1, 300, category="to go"),
            line("2", "Cappuccino", 1, 300, category="drinks"),
        ),
    )
    # The bundle completes across both lines (+15), but the in-scope line alone
    # completes none, so the happy hour doubles its base only.
    assert applied(decision) == {"base": 6, "cap": 15, "drinks": 3}


def test_unscoped_happy_hour_applies_to_an_order_without_lines() -> None:
    rules = compiled(happy_hours=[happy_hour("all", WEEKDAYS, "00:00", "23:59")])
    decision = run(rules, order(amount=1000, at=datetime(2026, 3, 4, 12, tzinfo=UTC)))
    assert decision.points == 20


def test_unknown_order_zone_is_an_invalid_order() -> None:
    with pytest.raises(InvalidOrder):
        _hh_points(AFTERNOON, datetime(2026, 3, 4, 12, tzinfo=UTC), "Mars/Olympus")
