"""Small shared wire types."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/#@+-]{0,127}$"
ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_ID_PATTERN)]
CustomerCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{8}$")]

_EMAIL = re.compile(r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,189}\.[^@\s\x00.]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_CODE = re.compile(r"[0-9A-Fa-f]{8}")
_PHONE_NOISE = re.compile(r"[\s().-]")


_CONTAINERS = (list, tuple, set, frozenset)  # a tuple: isinstance with a union is slower


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, _CONTAINERS):
        return any(_has_nul(v) for v in value)
    return False


has_nul = _has_nul  # the worker checks whole decoded messages with it


_SCALARS = frozenset({int, bool, float})


def refuse_nul(value: Any) -> Any:
    """A field validator: Postgres text and jsonb cannot store a NUL character."""
    if type(value) is str:  # the common cases first: a plain string, a number, None
        nul = "\x00" in value
    elif value is None or type(value) in _SCALARS:
        return value
    else:
        nul = _has_nul(value)
    if nul:
        raise ValueError("text must not contain NUL characters")
    return value


class WireModel(BaseModel):
    """Every request body refuses unknown fields: a typo must not pass silently.

    No string may carry a NUL character: Postgres text and jsonb cannot store one, so it
    would fail the write (a 500 on the synchronous paths, a poison message for the worker).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    _no_nul = field_validator("*", mode="after")(refuse_nul)


def _utc_representable(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None
    return value


# An aware time that also exists in UTC: 9999-12-31T23:59-23:59 does not.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc_representable)]


class CustomerRefType(StrEnum):
    code = "code"
    email = "email"
    phone = "phone"


class CustomerRef(WireModel):
    type: CustomerRefType
    value: Annotated[str, StringConstraints(min_length=1, max_length=254)]

    @model_validator(mode="after")
    def _normalise(self) -> CustomerRef:
        value = self.value
        if self.type is CustomerRefType.code:
            if not _CODE.fullmatch(value):
                raise ValueError("a customer code is 8 hexadecimal characters")
            value = value.upper()
        elif self.type is CustomerRefType.email:
            if not _EMAIL.match(value):
                raise ValueError("not a valid email address")
            value = value.lower()
        else:
            digits = _PHONE_NOISE.sub("", value)
            if not _PHONE.match(digits):
                raise ValueError("not a valid phone number")
            value = digits if digits.startswith("+") else "+" + digits
        object.__setattr__(self, "value", value)
        return self

    @property
    def key(self) -> str:
        return f"{self.type.value}:{self.value}"


Cents = Annotated[int, Field(strict=True, ge=0, le=10**12)]
