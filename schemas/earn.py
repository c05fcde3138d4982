"""``POST /v1/earn``: points on an amount, or stamps, without order lines (asynchronous)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, StrictBool, StringConstraints, model_validator

from schemas.common import CustomerRef, ExternalId, UtcDatetime, WireModel
from schemas.events import CardType
from schemas.redeem import Pin

CardId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class EarnIn(WireModel):
    customer: CustomerRef
    external_id: ExternalId
    card_type: CardType
    amount_cents: Annotated[int, Field(strict=True, ge=1, le=10**12)] | None = None
    stamps: Annotated[int, Field(strict=True, ge=1, le=10_000)] | None = None
    stamp_card_id: CardId | None = None
    store_id: Text64 | None = None
    occurred_at: UtcDatetime | None = None
    verification_pin: Pin | None = None
    manual_code: StrictBool = False

    @model_validator(mode="after")
    def _amount_matches_card_type(self) -> Self:
        if self.card_type is CardType.point:
            if self.amount_cents is None or self.stamps is not None:
                raise ValueError("card_type 'point' takes amount_cents (and no stamps)")
            if self.stamp_card_id is not None:
                raise ValueError("stamp_card_id goes with card_type 'stamp'")
        elif self.stamps is None or self.amount_cents is not None:
            raise ValueError("card_type 'stamp' takes stamps (and no amount_cents)")
        return self
