"""The demo coffee chain's rule set validates and behaves as its comments say."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from rules_factories import applied, line, order, run

from rules import CompiledRuleSet, CustomerState, compile_rule_set
from schemas.rules import RuleSet

DEMO = Path(__file__).parents[2] / "punchline" / "demo" / "coffee_chain.rules.yaml"


@pytest.fixture(scope="module")
def demo() -> CompiledRuleSet:
    return compile_rule_set(RuleSet.model_validate(yaml.safe_load(DEMO.read_text())), 1)


def test_demo_rules_validate() -> None:
    rule_set = RuleSet.model_validate(yaml.safe_load(DEMO.read_text()))
    assert [t.name for t in rule_set.tiers] == ["Bronze", "Silver", "Gold"]
    assert rule_set.default_stamp_card == "coffee"
    assert rule_set.stamp_cards[0].slots == 10


def test_weekday_afternoon_order_at_a_gold_customer(demo: CompiledRuleSet) -> None:
    decision = run(
        demo,
        order(
            line("1", "Cappuccino", 2, 350, category="drinks"),
            line("2", "Croissant", 1, 250, category="pastries"),
            line("3", "Gift card", 1, 2500, sku="GIFT-25", category="gift cards"),
            at=datetime(2026, 3, 4, 15, 30, tzinfo=UTC),  # Wednesday 16:30 in Paris
            tz="Europe/Paris",
        ),
        CustomerState(lifetime_points=2400, stamps={"coffee": 9}),
    )
    # base 9 (950c), bundle 15, pastries x2 +2, happy hour drinks (7 + 15) +22,
    # Gold x1.5 on 9.5 + 15 + 2.5 + 22 = 49 -> +24
    assert applied(decision) == {
        "base": 9,
        "cappuccino-bundle": 15,
        "pastry-double": 2,
        "afternoon-drinks": 22,
        "tier": 24,
    }
    assert decision.points == 72
    assert decision.line_points["3"] == 0
    assert decision.stamps == {"coffee": 2}
    assert [c.reward_name for c in decision.coupons] == ["Free Coffee"]


def test_loyalite_stamp_earn_goes_to_the_coffee_card(demo: CompiledRuleSet) -> None:
    decision = run(demo, order(direct=3))
    assert decision.stamps == {"coffee": 3}


def test_small_amount_is_rejected(demo: CompiledRuleSet) -> None:
    assert run(demo, order(amount=99)).error_code == "amount_too_low"
