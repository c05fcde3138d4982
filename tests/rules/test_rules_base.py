"""Base points: spend (rounding, discounts, order-level rounding) and unit (per unit, per visit)."""

from __future__ import annotations

from typing import Any

import pytest
from rules_factories import compiled, line, order, run

from rules import ORDER_REF, Order


@pytest.mark.parametrize(
    ("program", "the_order", "points"),
    [
        pytest.param({}, order(line("1", "A", 1, 1150)), 11, id="spend floor 11.5 -> 11"),
        pytest.param(
            {"rounding": "half_up"}, order(line("1", "A", 1, 1150)), 12, id="half_up 11.5 -> 12"
        ),
        pytest.param(
            {"rounding": "half_up"}, order(line("1", "A", 1, 1149)), 11, id="half_up 11.49 -> 11"
        ),
        pytest.param({"rounding": "ceil"}, order(line("1", "A", 1, 1101)), 12, id="ceil"),
        pytest.param(
            {"points": 3, "per_cents": 200}, order(line("1", "A", 1, 1000)), 15, id="3 pt / 200c"
        ),
        pytest.param(
            {}, order(line("1", "A", 2, 350, discount=100)), 6, id="line discount left out"
        ),
        pytest.param(
            {}, order(line("1", "A", 1, 300, discount=500)), 0, id="discount above price: 0"
        ),
        pytest.param(
            {},
            order(*(line(str(i), "A", 1, 150) for i in range(1, 6))),
            7,
            id="rounded once per order: 5 x 150c is 7, not 5",
        ),
        pytest.param({"points": 0}, order(line("1", "A", 1, 5000)), 0, id="zero rate"),
        pytest.param({}, order(amount=2500), 25, id="no lines: earn on amount_cents"),
        pytest.param({}, order(), 0, id="no lines, no amount"),
        pytest.param(
            {}, order(line("1", "A", 1, 1150), amount=99_999), 11, id="lines win over amount"
        ),
        pytest.param(
            {"mode": "unit", "points": 2},
            order(line("1", "A", 2, 350), line("2", "B", 3, 0)),
            10,
            id="unit: per unit, a 0-priced unit counts",
        ),
        pytest.param(
            {"mode": "unit", "points": 2},
            order(line("1", "Coffee", 2, 350, discount=350)),
            2,
            id="unit: a fully discounted unit does not count",
        ),
        pytest.param(
            {"mode": "unit", "per": "visit", "points": 5},
            order(line("1", "A", 2, 350), line("2", "B")),
            5,
            id="unit: per visit",
        ),
        pytest.param(
            {"mode": "unit", "per": "visit", "points": 5}, order(amount=0), 5, id="visit, no lines"
        ),
    ],
)
def test_base_points(program: dict[str, Any], the_order: Order, points: int) -> None:
    decision = run(compiled(program=program), the_order)
    assert decision.points == points
    assert sum(decision.line_points.values()) == points


def test_order_level_rounding_is_spread_by_running_total() -> None:
    decision = run(compiled(), order(*(line(str(i), "A", 1, 150) for i in range(1, 6))))
    # running total 1.5, 3, 4.5, 6, 7.5 floored: 1, 3, 4, 6, 7
    assert decision.line_points == {"1": 1, "2": 2, "3": 1, "4": 2, "5": 1}


def test_per_visit_points_sit_on_the_order_pseudo_line() -> None:
    rules = compiled(program={"mode": "unit", "per": "visit", "points": 5})
    decision = run(rules, order(line("1", "A"), line("2", "B")))
    assert decision.line_points == {"1": 0, "2": 0, ORDER_REF: 5}


def test_amount_only_order_earns_on_the_order_pseudo_line() -> None:
    decision = run(compiled(), order(amount=2500))
    assert decision.line_points == {ORDER_REF: 25}
    assert [(r.rule_id, r.points) for r in decision.rules_applied] == [("base", 25)]


def test_unit_mode_without_lines_earns_nothing_per_unit() -> None:
    # A unit program counts units; an order without lines has none (send lines).
    decision = run(compiled(program={"mode": "unit", "points": 2}), order(amount=2500))
    assert decision.points == 0
