"""``/v1/admin/rewards``: the merchant's reward catalogue."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, model_validator

from schemas.common import WireModel
from schemas.coupons import RewardKind

Name = Annotated[str, Field(min_length=1, max_length=120)]
Description = Annotated[str, Field(max_length=1000)]
Cost = Annotated[int, Field(strict=True, ge=1, le=10**9)]
Value = Annotated[int, Field(strict=True, ge=0, le=10**9)]
Tier = Annotated[str, Field(min_length=1, max_length=40)]
Icon = Annotated[str, Field(min_length=1, max_length=16)]
Days = Annotated[int, Field(strict=True, ge=1, le=3650)]


def check_value(kind: RewardKind | None, value: int | None) -> None:
    if kind is RewardKind.percent_discount and value is not None and not 1 <= value <= 100:
        raise ValueError("a percent_discount value is a percentage from 1 to 100")
    if kind is RewardKind.fixed_amount and value is not None and value < 1:
        raise ValueError("a fixed_amount value is in minor units and at least 1")


class RewardIn(WireModel):
    name: Name
    points_cost: Cost
    type: RewardKind
    value: Value = 0
    description: Description | None = None
    required_tier: Tier | None = None
    icon: Icon | None = None
    validity_days: Days = 30
    active: StrictBool = True

    @model_validator(mode="after")
    def _value_fits_type(self) -> RewardIn:
        check_value(self.type, self.value)
        return self


class RewardPatch(WireModel):
    """The type of a reward is fixed; retire it and create another to change it."""

    name: Name | None = None
    points_cost: Cost | None = None
    value: Value | None = None
    description: Description | None = None
    required_tier: Tier | None = None
    icon: Icon | None = None
    validity_days: Days | None = None
    active: StrictBool | None = None


class AdminRewardOut(BaseModel):
    id: str
    name: str
    description: str | None
    points_cost: int
    type: str
    value: int
    required_tier: str | None
    icon: str | None
    validity_days: int
    active: bool
