"""Verification presets (seed 001): which actions need the customer's PIN.

- standard: none;
- balanced: redeem, coupon redeem and balance adjustments;
- strict: those and earn, and a typed-in code (``manual_code: true``) is refused.
"""

from __future__ import annotations

from enum import StrEnum

from ingest_api.errors import ApiError


class Action(StrEnum):
    earn = "earn"
    redeem = "redeem"
    coupon_redeem = "coupon_redeem"
    adjust = "adjust"


_BALANCED = frozenset({Action.redeem, Action.coupon_redeem, Action.adjust})
_GATED: dict[str, frozenset[Action]] = {
    "standard": frozenset(),
    "balanced": _BALANCED,
    "strict": _BALANCED | {Action.earn},
}


def _gated(preset: str) -> frozenset[Action]:
    # An unknown preset fails safe: it gates like strict.
    return _GATED.get(preset.lower(), _GATED["strict"])


def requires_pin(preset: str, action: Action) -> bool:
    return action in _gated(preset)


def check_manual_code(preset: str, manual_code: bool) -> None:
    if manual_code and preset.lower() not in ("standard", "balanced"):
        raise ApiError(
            422,
            "manual_code_disabled",
            "This org refuses typed-in codes: scan the customer's QR instead.",
        )
