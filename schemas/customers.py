"""Customer enrolment, look-up, QR and PIN wire bodies (``/v1/customers…``)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, StrictBool, StringConstraints, field_validator

from schemas.common import WireModel

EMAIL_PATTERN = re.compile(r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,189}\.[^@\s\x00.]{2,63}$")
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
RawPhone = Annotated[str, StringConstraints(min_length=1, max_length=32)]


def check_email(value: str) -> str:
    if len(value) > 254 or not EMAIL_PATTERN.match(value):
        raise ValueError("not a valid email address")
    return value


class EnrollIn(WireModel):
    """``POST /v1/customers`` and Loyalite ``POST /webhook/customer``.

    ``email`` and ``consent_terms`` are optional here only so that their absence
    gets Loyalite's own codes (``email_required``, ``consent_terms_required``).
    """

    email: str | None = None
    consent_terms: StrictBool | None = None
    consent_privacy: StrictBool = False
    name: Name | None = None
    phone: RawPhone | None = None
    birthday: date | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else check_email(value)


class CustomerOut(BaseModel):
    customer_code: str
    name: str | None
    masked_email: str | None
    phone: str | None
    birthday: date | None
    status: str
    tier: str | None
    lifetime_points: int
    point_balance: int
    stamp_count: int
    stamps: dict[str, int]
    created_at: datetime


class EnrollmentOut(CustomerOut):
    is_new: bool


class Pagination(BaseModel):
    page: int
    limit: int
    total: int


class CustomerPage(BaseModel):
    customers: list[CustomerOut]
    pagination: Pagination


class QrOut(BaseModel):
    customer_code: str
    payload: str
    expires_at: datetime
    svg_url: str
    png_url: str


class LivePin(BaseModel):
    challenge_id: str
    action: str
    pin: str
    expires_at: datetime
    remaining_attempts: int


class PinsOut(BaseModel):
    """What the customer-facing app shows: the PIN to read out to the cashier."""

    customer_code: str
    pin: str | None
    pins: list[LivePin]
