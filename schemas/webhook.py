"""Loyalite's POS API bodies (seeds 000 and 001), kept exactly.

``card_type`` defaults differ by endpoint, as in Loyalite: ``point`` on
``/webhook/pos`` and ``stamp`` on ``/webhook/redeem``. On ``/webhook/pos`` the
``amount`` is money in major units (e.g. 25.5) for points and a whole number of
stamps for stamps.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Self

from pydantic import BaseModel, StrictBool, StrictFloat, StrictInt, model_validator

from schemas.common import CustomerCode, ExternalId, WireModel
from schemas.coupons import Token
from schemas.events import CardType
from schemas.redeem import Pin, Value

MAX_AMOUNT = Decimal(10**10)  # major units; 10^12 cents, the edge's ceiling everywhere
MAX_STAMPS = 10_000


class PosEarnIn(WireModel):
    customer_code: CustomerCode
    amount: StrictInt | StrictFloat
    card_type: CardType = CardType.point
    external_id: ExternalId | None = None
    manual_code: StrictBool = False
    verification_pin: Pin | None = None

    @model_validator(mode="after")
    def _amount_fits_card_type(self) -> Self:
        if self.card_type is CardType.stamp:
            if not isinstance(self.amount, int) or not 1 <= self.amount <= MAX_STAMPS:
                raise ValueError(f"amount: a whole number of stamps from 1 to {MAX_STAMPS}")
            return self
        if not math.isfinite(self.amount):
            raise ValueError("amount must be a finite number")
        amount = Decimal(str(self.amount))
        if amount <= 0 or amount > MAX_AMOUNT:
            raise ValueError(f"amount must be above 0 and at most {MAX_AMOUNT}")
        if amount != amount.quantize(Decimal("0.01")):
            raise ValueError("amount has more than 2 decimal places")
        return self

    @property
    def amount_cents(self) -> int | None:
        if self.card_type is CardType.stamp:
            return None
        return int(Decimal(str(self.amount)) * 100)

    @property
    def stamps(self) -> int | None:
        return int(self.amount) if self.card_type is CardType.stamp else None


class PosRedeemIn(WireModel):
    customer_code: CustomerCode
    value: Value
    card_type: CardType = CardType.stamp
    external_id: ExternalId | None = None
    manual_code: StrictBool = False
    verification_pin: Pin | None = None


class PosCouponRedeemIn(WireModel):
    token: Token
    manual_code: StrictBool = False
    verification_pin: Pin | None = None


class Envelope(BaseModel):
    """Every Loyalite success answer: ``{"data": …}``."""

    data: dict[str, Any]
