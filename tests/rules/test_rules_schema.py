"""RuleSet: the wire contract. Bounded values, unique ids, no unknown keys, exact decimals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from rules_factories import bundle, card, happy_hour, multiplier

from schemas.rules import RuleSet

HH = happy_hour("hh", ["mon"], "15:00", "17:00")


def test_default_rule_set() -> None:
    default = RuleSet.default()
    assert (default.program.points, default.program.per_cents) == (1, 100)
    assert default.program.rounding == "floor"
    assert default.default_stamp_card == "default"
    (only,) = default.stamp_cards
    assert (only.slots, only.earn, only.reward.name, only.reward.validity_days) == (
        10,
        "direct",
        "Free Coffee",
        30,
    )


def test_json_round_trip_keeps_exact_decimals() -> None:
    body = RuleSet.model_validate(
        {"tiers": [{"name": "Silver", "threshold": 5, "multiplier": 1.25}], "happy_hours": [HH]}
    )
    assert body.tiers[0].multiplier == Decimal("1.25")
    dumped = body.model_dump(mode="json")
    assert dumped["tiers"][0]["multiplier"] == "1.25"
    assert RuleSet.model_validate(dumped) == body


def test_json_schema_is_available() -> None:
    schema = RuleSet.model_json_schema()
    assert "bonuses" in schema["properties"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"unknown": 1}, id="unknown key"),
        pytest.param({"program": {"mode": "spend", "per_cents": 0}}, id="per_cents 0"),
        pytest.param({"program": {"rounding": "bankers"}}, id="unknown rounding"),
        pytest.param({"min_amount_cents": -1}, id="negative min amount"),
        pytest.param({"bonuses": [multiplier("x", "1.255", names=["A"])]}, id="3 decimal places"),
        pytest.param({"bonuses": [multiplier("x", "0.5", names=["A"])]}, id="multiplier below 1"),
        pytest.param({"bonuses": [multiplier("x", "101", names=["A"])]}, id="multiplier above 100"),
        pytest.param({"bonuses": [{**bundle("x", 2, 15, names=["A"]), "every": 0}]}, id="every 0"),
        pytest.param({"bonuses": [bundle("x", 2, 15)]}, id="empty match"),
        pytest.param({"bonuses": [{**bundle("x", 2, 15, names=["A"]), "kind": "b"}]}, id="kind"),
        pytest.param({"bonuses": [bundle("Bad Id", 2, 15, names=["A"])]}, id="id pattern"),
        pytest.param({"bonuses": [bundle("base", 2, 15, names=["A"])]}, id="reserved id"),
        pytest.param(
            {"bonuses": [bundle("x", 2, 15, names=["A"])], "happy_hours": [{**HH, "id": "x"}]},
            id="duplicate id across kinds",
        ),
        pytest.param({"happy_hours": [{**HH, "start": "24:00"}]}, id="bad clock"),
        pytest.param({"happy_hours": [{**HH, "start": "9:00"}]}, id="clock needs HH:MM"),
        pytest.param({"happy_hours": [{**HH, "end": "15:00"}]}, id="empty window"),
        pytest.param({"happy_hours": [{**HH, "weekdays": []}]}, id="no weekday"),
        pytest.param({"happy_hours": [{**HH, "weekdays": ["mon", "mon"]}]}, id="same day twice"),
        pytest.param({"happy_hours": [{**HH, "weekdays": ["monday"]}]}, id="weekday name"),
        pytest.param({"happy_hours": [{**HH, "timezone": "Mars/Olympus"}]}, id="unknown zone"),
        pytest.param(
            {"tiers": [{"name": "A", "threshold": 5}, {"name": "B", "threshold": 5}]},
            id="thresholds not increasing",
        ),
        pytest.param(
            {"tiers": [{"name": "A", "threshold": 0}, {"name": "A", "threshold": 5}]},
            id="duplicate tier",
        ),
        pytest.param({"caps": {"per_order": 0}}, id="cap 0"),
        pytest.param({"stamp_cards": [card("c", 0, "direct")]}, id="0 slots"),
        pytest.param({"stamp_cards": [card("c", 10, "item")]}, id="item card without match"),
        pytest.param(
            {"stamp_cards": [card("c", 10, "visit", on={"names": ["A"]})]}, id="visit with match"
        ),
        pytest.param(
            {"stamp_cards": [card("c", 10, "direct", min_spend=100)]}, id="min spend on direct"
        ),
        pytest.param(
            {
                "stamp_cards": [
                    {
                        **card("c", 10, "direct"),
                        "reward": {"name": "R", "type": "percent", "value": 0},
                    }
                ]
            },
            id="percent 0",
        ),
        pytest.param(
            {
                "stamp_cards": [
                    {**card("c", 10, "direct"), "reward": {"name": "R", "type": "fixed"}}
                ]
            },
            id="fixed without value",
        ),
        pytest.param({"default_stamp_card": "nope"}, id="default card must exist"),
    ],
)
def test_invalid_rule_sets_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RuleSet.model_validate(body)


def test_rule_set_is_immutable() -> None:
    with pytest.raises(ValidationError):
        RuleSet.default().min_amount_cents = 5
