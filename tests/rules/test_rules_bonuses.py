"""Bonuses: bundles (seed 003), multipliers, fixed points per unit, matching."""

from __future__ import annotations

from typing import Any

import pytest
from rules_factories import (
    applied,
    bundle,
    compiled,
    fixed,
    line,
    multiplier,
    order,
    run,
    seed_003_order,
)

from rules import Order

CAPPUCCINO_BUNDLE = bundle("cap-bundle", 2, 15, names=["Cappuccino"])


def test_seed_003_worked_example() -> None:
    """LP seed 003: 2 Cappuccino at 350 + 1 Cake at 450, 1 pt / 100c floor, bundle 2 = 15."""
    decision = run(compiled(bonuses=[CAPPUCCINO_BUNDLE]), seed_003_order())
    assert decision.points == 26
    assert applied(decision) == {"base": 11, "cap-bundle": 15}
    assert decision.line_points == {"1": 22, "2": 4}


@pytest.mark.parametrize(
    ("bonuses", "the_order", "expected"),
    [
        pytest.param(
            [CAPPUCCINO_BUNDLE],
            order(line("1", "Cappuccino", 5, 100)),
            {"base": 5, "cap-bundle": 30},
            id="bundle repeats: 5 units = 2 bundles",
        ),
        pytest.param(
            [CAPPUCCINO_BUNDLE],
            order(line("1", "Cappuccino", 1, 100)),
            {"base": 1},
            id="bundle not reached",
        ),
        pytest.param(
            [CAPPUCCINO_BUNDLE],
            order(line("1", " CAPPUCCINO ", 1, 100), line("2", "cappuccino", 1, 100)),
            {"base": 2, "cap-bundle": 15},
            id="bundle across lines, name case-insensitive",
        ),
        pytest.param(
            [CAPPUCCINO_BUNDLE],
            order(line("1", "Cappuccino", 2, 350, discount=350)),
            {"base": 3},
            id="a free unit does not count toward a bundle",
        ),
        pytest.param(
            [multiplier("drinks-x2", "2", categories=["Drinks"])],
            seed_003_order(),
            {"base": 11, "drinks-x2": 7},
            id="category multiplier x2 on the matched lines' base",
        ),
        pytest.param(
            [multiplier("drinks-x1.5", "1.5", categories=["drinks"])],
            order(line("1", "Latte", 1, 750, category="drinks")),
            {"base": 7, "drinks-x1.5": 3},
            id="multiplier from the exact base, rounded once: 7.5 x 0.5 = 3.75 -> 3",
        ),
        pytest.param(
            [fixed("beans", 20, skus=["BEANS-1KG"])],
            order(line("1", "Beans", 3, 1000, sku="beans-1kg")),
            {"base": 30, "beans": 60},
            id="fixed per unit, by sku",
        ),
        pytest.param(
            [fixed("oat", 5, names=["Oat latte"]), multiplier("x3", "3", names=["Oat latte"])],
            order(line("1", "Oat Latte", 2, 400)),
            {"base": 8, "oat": 10, "x3": 16},
            id="bonuses on one line add up, each from the base",
        ),
        pytest.param(
            [multiplier("x2", "2", skus=["A"], categories=["drinks"])],
            order(line("1", "Latte", 1, 500, sku="A", category="drinks")),
            {"base": 5, "x2": 5},
            id="a bonus matching a line twice applies once",
        ),
        pytest.param(
            [multiplier("food", "2", categories=["food"])],
            order(line("1", "Latte", 1, 500, category="drinks"), line("2", "Tea", 1, 500)),
            {"base": 10},
            id="no match, no bonus listed",
        ),
    ],
)
def test_bonuses(bonuses: list[dict[str, Any]], the_order: Order, expected: dict[str, int]) -> None:
    decision = run(compiled(bonuses=bonuses), the_order)
    assert applied(decision) == expected
    assert decision.points == sum(expected.values()) == sum(decision.line_points.values())


def test_bundles_are_credited_to_the_line_completing_them() -> None:
    decision = run(
        compiled(bonuses=[CAPPUCCINO_BUNDLE]),
        order(line("1", "Cappuccino", 1, 100), line("2", "Cappuccino", 1, 100)),
    )
    assert decision.line_points == {"1": 1, "2": 16}
