"""Small shared wire types."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/#@+-]{0,127}$"
ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_ID_PATTERN)]
CustomerCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{8}$")]

_EMAIL = re.compile(r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,189}\.[^@\s\x00.]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


class WireModel(BaseModel):
    """Every request body refuses unknown fields: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
            if not re.fullmatch(r"[0-9A-Fa-f]{8}", value):
                raise ValueError("a customer code is 8 hexadecimal characters")
            value = value.upper()
        elif self.type is CustomerRefType.email:
            if not _EMAIL.match(value):
                raise ValueError("not a valid email address")
            value = value.lower()
        else:
            digits = re.sub(r"[\s().-]", "", value)
            if not _PHONE.match(digits):
                raise ValueError("not a valid phone number")
            value = digits if digits.startswith("+") else "+" + digits
        object.__setattr__(self, "value", value)
        return self

    @property
    def key(self) -> str:
        return f"{self.type.value}:{self.value}"


Cents = Annotated[int, Field(strict=True, ge=0, le=10**12)]
