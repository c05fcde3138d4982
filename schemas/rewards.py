"""The reward catalogue and reward redemption (``/v1/rewards``, ``/v1/redemptions``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, StrictBool

from schemas.common import CustomerRef, ExternalId, WireModel
from schemas.coupons import RewardKind
from schemas.redeem import Pin


class RewardOut(BaseModel):
    id: str
    name: str
    description: str | None
    points_cost: int
    type: RewardKind
    value: int
    required_tier: str | None
    icon: str | None


class RewardsOut(BaseModel):
    rewards: list[RewardOut]


class RedemptionIn(WireModel):
    customer: CustomerRef
    reward_id: uuid.UUID
    external_id: ExternalId
    verification_pin: Pin | None = None
    manual_code: StrictBool = False


class IssuedCoupon(BaseModel):
    id: str
    name: str
    qr_token: str
    type: RewardKind
    value: int
    expires_at: datetime


class RedemptionOut(BaseModel):
    external_id: str
    reward_id: str
    customer_code: str
    points_redeemed: int
    point_balance: int
    coupon: IssuedCoupon
