"""``POST /v1/redeem``: take points or stamps off a wallet, synchronously."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from schemas.common import CustomerRef, ExternalId, WireModel
from schemas.events import CardType

Pin = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")]
Value = Annotated[int, Field(strict=True, ge=1, le=1_000_000_000)]


class RedeemIn(WireModel):
    customer: CustomerRef
    card_type: CardType
    value: Value
    external_id: ExternalId
    verification_pin: Pin | None = None
    manual_code: StrictBool = False


class Balances(BaseModel):
    points: int
    stamps: int
    stamp_card_id: str


class RedeemOut(BaseModel):
    external_id: str
    customer_code: str
    card_type: CardType
    value: int
    balances: Balances
    redeemed_at: datetime
