"""Bodies of ``POST /v1/orders/{external_id}/cancel|delete|refund``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from schemas.common import CustomerRef, ExternalId, WireModel
from schemas.events import RefundLineIn


class CancelIn(WireModel):
    """``customer`` is the order's customer reference; it may be left out once the order
    has been applied (the edge then reuses the order's stream key)."""

    customer: CustomerRef | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None


class RefundIn(WireModel):
    refund_id: ExternalId
    lines: Annotated[list[RefundLineIn], Field(min_length=1, max_length=500)]
    customer: CustomerRef | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None
