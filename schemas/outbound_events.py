"""Domain events as they leave Punchline: ``punchline.events.v1`` and webhook bodies.

The outbox relay publishes one :class:`OutboundEvent` per message, JSON encoded,
keyed ``<org_id>:<customer_id>`` (``<org_id>`` for org-level events), so the
events of one customer stay in order. A webhook delivery sends the same bytes.
``event_id`` is stable across relays, redeliveries and webhook retries:
receivers deduplicate on it.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

EVENTS_SCHEMA_VERSION: Literal[1] = 1


class EventType(StrEnum):
    points_earned = "points.earned"
    points_redeemed = "points.redeemed"
    points_reversed = "points.reversed"
    points_adjusted = "points.adjusted"
    stamps_earned = "stamps.earned"
    stamps_redeemed = "stamps.redeemed"
    coupon_issued = "coupon.issued"
    coupon_redeemed = "coupon.redeemed"
    reward_redeemed = "reward.redeemed"
    tier_changed = "tier.changed"
    pin_issued = "pin.issued"
    customer_enrolled = "customer.enrolled"
    customer_erased = "customer.erased"


ALL_EVENTS = "*"


def subscription_patterns() -> frozenset[str]:
    """What an endpoint may subscribe to: a type, a family (``points.*``) or ``*``."""
    families = {f"{t.value.split('.')[0]}.*" for t in EventType}
    return frozenset({ALL_EVENTS, *families, *(t.value for t in EventType)})


def subscribed(patterns: list[str] | tuple[str, ...], event_type: str) -> bool:
    family = event_type.split(".", 1)[0]
    return any(p in (ALL_EVENTS, event_type, f"{family}.*") for p in patterns)


class OutboundEvent(BaseModel):
    """``event_type`` is a plain string so that a relay never chokes on a type added
    later; :class:`EventType` lists the types known to this version."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = EVENTS_SCHEMA_VERSION
    event_id: uuid.UUID
    event_type: str
    org_id: uuid.UUID
    customer_code: str | None
    sequence: int
    occurred_at: AwareDatetime
    data: dict[str, Any]

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
