"""Merchant administration wire bodies (``/v1/admin/…``): customers, products, keys, org."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from limits import parse
from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.common import Cents, ExternalId, WireModel
from schemas.customers import Name, Pagination, RawPhone
from schemas.redeem import Pin

Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
MAX_ADJUSTMENT = 1_000_000_000


def _refuse_nulls(model: BaseModel, *nullable: str) -> None:
    if not model.model_fields_set:
        raise ValueError("give at least one field to change")
    for name in model.model_fields_set - set(nullable):
        if getattr(model, name) is None:
            raise ValueError(f"{name} may not be null")


# --- customers -----------------------------------------------------------------------


class SortBy(StrEnum):
    created_at = "created_at"
    name = "name"
    code = "code"
    points = "points"
    lifetime_points = "lifetime_points"


class SortOrder(StrEnum):
    asc = "asc"
    desc = "desc"


class StatusFilter(StrEnum):
    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    ERASED = "ERASED"


class AdminCustomerOut(BaseModel):
    customer_code: str
    name: str | None
    email: str | None
    phone: str | None
    birthday: date | None
    status: str
    tier: str | None
    lifetime_points: int
    point_balance: int
    stamps: dict[str, int]
    created_at: datetime
    erased_at: datetime | None


class AdminCustomerPage(BaseModel):
    customers: list[AdminCustomerOut]
    pagination: Pagination


class LedgerEntryOut(BaseModel):
    id: int
    asset: str
    delta: int
    kind: str
    external_id: str
    reason: str | None
    actor: str | None
    rule_set_version: int | None
    created_at: datetime


class AdminCustomerDetail(BaseModel):
    customer: AdminCustomerOut
    history: list[LedgerEntryOut]
    total_points: int


class CustomerPatchIn(WireModel):
    """``name`` and ``phone`` may be set to null (cleared); ``status`` may not."""

    name: Name | None = None
    phone: RawPhone | None = None
    status: Literal["ACTIVE", "BLOCKED"] | None = None

    @model_validator(mode="after")
    def _something(self) -> CustomerPatchIn:
        _refuse_nulls(self, "name", "phone")
        return self


class PointsAdjustIn(WireModel):
    """``external_id`` makes a retry safe: the same one twice adjusts once."""

    points: Annotated[int, Field(strict=True, ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)]
    reason: Reason
    external_id: ExternalId | None = None
    verification_pin: Pin | None = Field(
        default=None, description="the customer's PIN, on Balanced and Strict orgs"
    )

    @field_validator("points")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment of 0 points changes nothing")
        return value


class PointsAdjustOut(BaseModel):
    external_id: str
    customer_code: str
    adjustment: int
    new_balance: int
    reason: str
    actor: str
    replayed: bool = False


class ErasedOut(BaseModel):
    customer_code: str
    status: str
    erased_at: datetime


# --- products ------------------------------------------------------------------------


class ProductIn(WireModel):
    sku: Text64
    name: Text200
    category: Text64 | None = None
    price_cents: Cents | None = None
    active: StrictBool = True


class ProductsPutIn(WireModel):
    products: Annotated[list[ProductIn], Field(min_length=1, max_length=1000)]

    @model_validator(mode="after")
    def _unique_skus(self) -> ProductsPutIn:
        skus = [p.sku for p in self.products]
        if len(skus) != len(set(skus)):
            raise ValueError("each sku may appear once per request")
        return self


class ProductOut(BaseModel):
    sku: str
    name: str
    category: str | None
    price_cents: int | None
    active: bool
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    products: list[ProductOut]
    pagination: Pagination


class ProductsPutOut(BaseModel):
    created: int
    updated: int


# --- API keys ------------------------------------------------------------------------


class Scope(StrEnum):
    pos = "pos"
    admin = "admin"
    customer_app = "customer_app"


RateGroup = Literal["earn", "redeem", "coupons", "customer"]
RateSpec = Annotated[str, StringConstraints(min_length=1, max_length=50)]


class KeyCreateIn(WireModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    rate_limits: dict[RateGroup, RateSpec] | None = None

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        if len(value) != len(set(value)):
            raise ValueError("each scope may appear once")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _parsable(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for group, spec in (value or {}).items():
            try:
                parse(spec)
            except ValueError as exc:
                raise ValueError(
                    f"rate limit for {group!r} is not valid, e.g. '60/minute'"
                ) from exc
        return value


class KeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    last4: str
    scopes: list[str]
    rate_limits: dict[str, str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreatedOut(KeyOut):
    key: str


class KeyList(BaseModel):
    keys: list[KeyOut]


# --- org settings --------------------------------------------------------------------


class VerificationPreset(StrEnum):
    standard = "standard"
    balanced = "balanced"
    strict = "strict"


class NegativeBalancePolicy(StrEnum):
    allow_negative = "allow_negative"
    clamp_to_zero = "clamp_to_zero"


class SubscriptionStatus(StrEnum):
    active = "active"
    past_due = "past_due"
    expired = "expired"
    cancelled = "cancelled"


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class OrgOut(BaseModel):
    id: uuid.UUID
    name: str
    timezone: str
    currency: str
    verification_preset: str
    negative_balance_policy: str
    subscription_status: str
    created_at: datetime


class OrgPatchIn(WireModel):
    name: Text200 | None = None
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    verification_preset: VerificationPreset | None = None
    negative_balance_policy: NegativeBalancePolicy | None = None
    subscription_status: SubscriptionStatus | None = None

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str | None) -> str | None:
        if value is not None and value not in _zones():
            raise ValueError("not an IANA time zone, e.g. 'Europe/Dublin'")
        return value

    @model_validator(mode="after")
    def _something(self) -> OrgPatchIn:
        _refuse_nulls(self)
        return self

    def changes(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in sorted(self.model_fields_set)}
