"""Decisions and reversals as JSON-safe dicts (stored in Postgres JSONB) and back.

The dicts hold only str, int, bool, None, lists and dicts with str keys, so
``json.dumps`` / orjson can write them and the round trip is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from rules.types import CouponGrant, Decision, Reversal, RuleApplied


def _counts(raw: Mapping[str, Any]) -> dict[str, int]:
    return {str(key): int(value) for key, value in raw.items()}


def _nested(raw: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    return {str(key): _counts(value) for key, value in raw.items()}


def _pairs(raw: list[Any]) -> tuple[tuple[str, int], ...]:
    return tuple((str(card), int(fill)) for card, fill in raw)


def _status(raw: Any) -> Literal["applied", "rejected"]:
    if raw == "applied":
        return "applied"
    if raw == "rejected":
        return "rejected"
    raise ValueError(f"unknown decision status {raw!r}")


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    return {
        "status": decision.status,
        "error_code": decision.error_code,
        "points": decision.points,
        "stamps": dict(decision.stamps),
        "card_balances": dict(decision.card_balances),
        "coupons": [
            {
                "card_id": c.card_id,
                "fill_number": c.fill_number,
                "reward_name": c.reward_name,
                "reward_type": c.reward_type,
                "reward_value": c.reward_value,
                "validity_days": c.validity_days,
            }
            for c in decision.coupons
        ],
        "tier": decision.tier,
        "tier_changed": decision.tier_changed,
        "rules_applied": [
            {"rule_id": r.rule_id, "label": r.label, "points": r.points, "stamps": r.stamps}
            for r in decision.rules_applied
        ],
        "line_points": dict(decision.line_points),
        "line_stamps": {card: dict(lines) for card, lines in decision.line_stamps.items()},
        "rule_set_version": decision.rule_set_version,
    }


def decision_from_dict(raw: Mapping[str, Any]) -> Decision:
    tier = raw["tier"]
    error_code = raw["error_code"]
    return Decision(
        status=_status(raw["status"]),
        error_code=None if error_code is None else str(error_code),
        points=int(raw["points"]),
        stamps=_counts(raw["stamps"]),
        card_balances=_counts(raw["card_balances"]),
        coupons=tuple(
            CouponGrant(
                card_id=str(c["card_id"]),
                fill_number=int(c["fill_number"]),
                reward_name=str(c["reward_name"]),
                reward_type=str(c["reward_type"]),
                reward_value=int(c["reward_value"]),
                validity_days=int(c["validity_days"]),
            )
            for c in raw["coupons"]
        ),
        tier=None if tier is None else str(tier),
        tier_changed=bool(raw["tier_changed"]),
        rules_applied=tuple(
            RuleApplied(str(r["rule_id"]), str(r["label"]), int(r["points"]), int(r["stamps"]))
            for r in raw["rules_applied"]
        ),
        line_points=_counts(raw["line_points"]),
        line_stamps=_nested(raw["line_stamps"]),
        rule_set_version=int(raw["rule_set_version"]),
    )


def reversal_to_dict(reversal: Reversal) -> dict[str, Any]:
    return {
        "points": reversal.points,
        "stamps": dict(reversal.stamps),
        "coupons_to_void": [[card, fill] for card, fill in reversal.coupons_to_void],
        "card_balances": dict(reversal.card_balances),
        "refunded_quantities": dict(reversal.refunded_quantities),
        "line_points": dict(reversal.line_points),
        "line_stamps": {card: dict(lines) for card, lines in reversal.line_stamps.items()},
        "voided_coupons": [[card, fill] for card, fill in reversal.voided_coupons],
        "complete": reversal.complete,
        "rule_set_version": reversal.rule_set_version,
    }


def reversal_from_dict(raw: Mapping[str, Any]) -> Reversal:
    return Reversal(
        points=int(raw["points"]),
        stamps=_counts(raw["stamps"]),
        coupons_to_void=_pairs(raw["coupons_to_void"]),
        card_balances=_counts(raw["card_balances"]),
        refunded_quantities=_counts(raw["refunded_quantities"]),
        line_points=_counts(raw["line_points"]),
        line_stamps=_nested(raw["line_stamps"]),
        voided_coupons=_pairs(raw["voided_coupons"]),
        complete=bool(raw["complete"]),
        rule_set_version=int(raw["rule_set_version"]),
    )
