"""Decisions and reversals survive a JSON round trip exactly (stored as JSONB)."""

from __future__ import annotations

import json

import pytest
from rules_factories import bundle, card, compiled, line, order, run, seed_003_order

from rules import (
    CustomerState,
    Decision,
    RefundLine,
    decision_from_dict,
    decision_to_dict,
    reversal_from_dict,
    reversal_to_dict,
    reverse,
)

RULES = compiled(
    bonuses=[bundle("cap", 2, 15, names=["Cappuccino"])],
    tiers=[{"name": "Silver", "threshold": 10, "multiplier": "1.25"}],
    stamp_cards=[card("coffee", 2, "item", on={"categories": ["drinks"]}), card("v", 3, "visit")],
    default_stamp_card="coffee",
    min_amount_cents=100,
)


@pytest.mark.parametrize(
    "decision",
    [
        pytest.param(run(RULES, seed_003_order(), CustomerState(lifetime_points=5)), id="applied"),
        pytest.param(run(RULES, order(line("1", "A", 1, 50))), id="rejected"),
        pytest.param(run(RULES, order(direct=5)), id="direct stamps"),
    ],
)
def test_decision_round_trip(decision: Decision) -> None:
    stored = json.loads(json.dumps(decision_to_dict(decision)))
    assert decision_from_dict(stored) == decision


def test_decision_dict_shape() -> None:
    stored = decision_to_dict(run(RULES, seed_003_order()))
    assert stored["points"] == 26
    assert stored["rules_applied"][0] == {
        "rule_id": "base",
        "label": "1 pt per 100 cents",
        "points": 11,
        "stamps": 0,
    }
    assert stored["coupons"][0]["card_id"] == "coffee"


def test_reversal_round_trip() -> None:
    the_order = seed_003_order()
    decision = run(RULES, the_order)
    reversal = reverse(
        the_order, decision, (RefundLine("1", 1),), None, RULES, CustomerState(stamps={"coffee": 0})
    )
    stored = json.loads(json.dumps(reversal_to_dict(reversal)))
    assert reversal_from_dict(stored) == reversal


def test_unknown_status_is_refused() -> None:
    stored = decision_to_dict(run(RULES, seed_003_order()))
    with pytest.raises(ValueError, match="status"):
        decision_from_dict({**stored, "status": "maybe"})
