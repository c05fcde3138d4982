"""Webhook endpoint registration and the delivery log (``/v1/admin/webhooks…``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, StringConstraints, field_validator

from schemas.common import WireModel
from schemas.customers import Pagination
from schemas.outbound_events import subscription_patterns

Secret = Annotated[str, StringConstraints(min_length=16, max_length=200, pattern=r"^[\x21-\x7e]+$")]


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("give an absolute http(s) URL")
    if parts.username or parts.password:
        raise ValueError("credentials in the URL are not allowed; verify the signature instead")
    if parts.fragment:
        raise ValueError("a URL fragment is never sent; remove it")
    return value


class WebhookCreateIn(WireModel):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000)]
    events: Annotated[list[str], Field(min_length=1, max_length=50)]
    secret: Secret | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - subscription_patterns())
        if unknown:
            raise ValueError(f"unknown event types {unknown}; use a type, 'family.*' or '*'")
        return sorted(set(value))


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime
    disabled_at: datetime | None


class WebhookCreatedOut(WebhookOut):
    """The signing secret is shown here once, and never again."""

    secret: str


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: int
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    pagination: Pagination
