"""Tiers: thresholds on lifetime points, the current tier's multiplier, the tier after the earn."""

from __future__ import annotations

import pytest
from rules_factories import applied, compiled, line, multiplier, order, run, seed_003_order

from rules import CustomerState, tier_for

TIERS = [
    {"name": "Bronze", "threshold": 0},
    {"name": "Silver", "threshold": 500, "multiplier": "1.25"},
    {"name": "Gold", "threshold": 2000, "multiplier": "1.5"},
]


@pytest.mark.parametrize(
    ("lifetime", "tier"),
    [
        pytest.param(0, "Bronze", id="0"),
        pytest.param(499, "Bronze", id="499"),
        pytest.param(500, "Silver", id="500 reaches Silver"),
        pytest.param(1999, "Silver", id="1999"),
        pytest.param(10**9, "Gold", id="a lot"),
    ],
)
def test_tier_for(lifetime: int, tier: str) -> None:
    assert tier_for(lifetime, compiled(tiers=TIERS)) == tier


def test_below_the_lowest_threshold_there_is_no_tier() -> None:
    rules = compiled(tiers=[{"name": "Silver", "threshold": 100, "multiplier": "2"}])
    assert tier_for(99, rules) is None
    assert tier_for(5, compiled()) is None


def test_gold_on_top_of_a_category_bonus() -> None:
    rules = compiled(tiers=TIERS, bonuses=[multiplier("drinks", "2", categories=["drinks"])])
    decision = run(rules, seed_003_order(), CustomerState(lifetime_points=2500))
    # base 11 (exact 11.5), drinks +7, then Gold: (11.5 + 7) x 0.5 = 9.25 -> 9
    assert applied(decision) == {"base": 11, "drinks": 7, "tier": 9}
    assert decision.points == 27
    assert [r.label for r in decision.rules_applied][-1] == "Gold x1.5"
    assert (decision.tier, decision.tier_changed) == ("Gold", False)


def test_the_earn_uses_the_current_tier_and_reports_the_new_one() -> None:
    rules = compiled(tiers=TIERS)
    decision = run(rules, order(line("1", "A", 1, 2000)), CustomerState(lifetime_points=1990))
    assert applied(decision) == {"base": 20, "tier": 5}  # Silver x1.25, not Gold
    assert (decision.tier, decision.tier_changed) == ("Gold", True)


def test_state_tier_wins_over_lifetime_points() -> None:
    rules = compiled(tiers=TIERS)
    state = CustomerState(tier="Gold", lifetime_points=0)
    decision = run(rules, order(line("1", "A", 1, 1000)), state)
    assert applied(decision)["tier"] == 5
    # the tier is recomputed from lifetime points after every earn
    assert (decision.tier, decision.tier_changed) == ("Bronze", True)


def test_unknown_state_tier_falls_back_to_lifetime_points() -> None:
    rules = compiled(tiers=TIERS)
    state = CustomerState(tier="Platinum", lifetime_points=600)
    decision = run(rules, order(line("1", "A", 1, 1000)), state)
    assert applied(decision)["tier"] == 2  # Silver: 10 x 0.25 = 2.5 -> 2
    assert (decision.tier, decision.tier_changed) == ("Silver", True)


def test_no_tiers() -> None:
    decision = run(compiled(), order(line("1", "A", 1, 1000)), CustomerState(lifetime_points=9))
    assert (decision.tier, decision.tier_changed, decision.points) == (None, False, 10)
