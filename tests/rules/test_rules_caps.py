"""Caps: per order and per customer per local day, applied last, as negative contributions."""

from __future__ import annotations

from typing import Any

import pytest
from rules_factories import applied, bundle, compiled, run, seed_003_order

from rules import CustomerState

SEED_BUNDLE = [bundle("cap-bundle", 2, 15, names=["Cappuccino"])]  # seed 003 earns 26


@pytest.mark.parametrize(
    ("caps", "points_today", "points", "cuts"),
    [
        pytest.param({"per_order": 20}, 0, 20, {"cap_per_order": -6}, id="per order"),
        pytest.param({"per_order": 26}, 0, 26, {}, id="per order, not binding"),
        pytest.param({"per_day": 30}, 20, 10, {"cap_per_day": -16}, id="per day, 10 left"),
        pytest.param({"per_day": 30}, 30, 0, {"cap_per_day": -26}, id="per day, used up"),
        pytest.param({"per_day": 30}, 45, 0, {"cap_per_day": -26}, id="per day, over already"),
        pytest.param({"per_day": 30}, 4, 26, {}, id="per day, not binding"),
        pytest.param(
            {"per_order": 20, "per_day": 30},
            15,
            15,
            {"cap_per_order": -6, "cap_per_day": -5},
            id="order cap first, then day cap",
        ),
    ],
)
def test_caps(caps: dict[str, Any], points_today: int, points: int, cuts: dict[str, int]) -> None:
    decision = run(
        compiled(bonuses=SEED_BUNDLE, caps=caps),
        seed_003_order(),
        CustomerState(points_today=points_today),
    )
    assert decision.points == points
    rules_applied = applied(decision)
    assert {k: v for k, v in rules_applied.items() if k.startswith("cap_")} == cuts
    assert sum(rules_applied.values()) == points == sum(decision.line_points.values())
    assert all(p >= 0 for p in decision.line_points.values())


def test_cap_is_taken_from_lines_in_proportion() -> None:
    decision = run(compiled(bonuses=SEED_BUNDLE, caps={"per_order": 13}), seed_003_order())
    # 22 and 4 points kept in proportion 13/26: 11 and 2
    assert decision.line_points == {"1": 11, "2": 2}
