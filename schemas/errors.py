"""The error body every 4xx answer carries: ``{"error": "<code>", "message": "…", …extra}``.

Published in the OpenAPI spec as the ``4XX`` response of every operation, so a client
(and the schemathesis run in tests/test_fuzz_openapi.py) can hold each error to it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema


class ErrorDetail(BaseModel):
    """One field a ``validation_error`` blames: a dotted path and why."""

    path: str
    message: str


class ErrorOut(BaseModel):
    """A machine code, usually a message, and extra fields some codes add (for example
    ``remaining_attempts`` with ``pin_invalid``); ``details`` comes with ``validation_error``."""

    model_config = ConfigDict(extra="allow")

    error: str
    # Absent rather than null when there is nothing to say; hence no null in the schema.
    message: str | SkipJsonSchema[None] = None
    details: list[ErrorDetail] | SkipJsonSchema[None] = None
