"""Coupon verification and consumption (``/v1/coupons…``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, StrictBool, StringConstraints

from schemas.common import WireModel
from schemas.redeem import Pin

Token = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RewardKind(StrEnum):
    product = "product"
    percent_discount = "percent_discount"
    fixed_amount = "fixed_amount"


class CouponStatus(StrEnum):
    issued = "issued"
    redeemed = "redeemed"
    voided = "voided"
    expired = "expired"


class CouponRedeemIn(WireModel):
    token: Token
    verification_pin: Pin | None = None
    manual_code: StrictBool = False


class CouponOut(BaseModel):
    """``type``/``value``: product (price covered in cents, 0 = any), percent_discount
    (1-100) or fixed_amount (cents off), so the cashier can apply it (seed 004)."""

    id: str
    name: str
    type: RewardKind
    value: int
    status: CouponStatus
    customer_code: str
    source: str
    card_id: str | None
    reward_id: str | None
    issued_at: datetime
    expires_at: datetime | None
    redeemed_at: datetime | None
