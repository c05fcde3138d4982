"""``POST /v1/admin/rules:simulate``: evaluate an order without writing anything."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field

from schemas.common import Cents, CustomerCode, WireModel
from schemas.orders import MAX_LINES, OrderLine
from schemas.rules import RuleSet


class SimulatedOrder(WireModel):
    occurred_at: AwareDatetime
    store_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    lines: Annotated[list[OrderLine], Field(default_factory=list, max_length=MAX_LINES)]
    amount_cents: Cents | None = None
    stamps: Annotated[int, Field(strict=True, ge=1, le=10_000)] | None = None


class HypotheticalCustomer(WireModel):
    tier: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    lifetime_points: Annotated[int, Field(strict=True, ge=0, le=10**12)] = 0
    points_today: Annotated[int, Field(strict=True, ge=0, le=10**12)] = 0
    stamps: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0, le=10**6)]] = (
        Field(default_factory=dict, max_length=20)
    )


class SimulateIn(WireModel):
    order: SimulatedOrder
    rules: RuleSet | None = Field(
        default=None, description="a draft rule set; the active one when omitted"
    )
    customer_code: CustomerCode | None = Field(
        default=None, description="evaluate with this customer's real state"
    )
    customer: HypotheticalCustomer | None = Field(
        default=None, description="a hypothetical customer state"
    )
