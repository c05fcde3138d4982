"""Kafka event envelopes. Each carries its schema version.

``punchline.ingest.v1`` carries one :class:`IngestEvent` per message, JSON
encoded, keyed ``<org_id>:<customer type>:<customer value>`` so that every
event of one customer lands on one partition, in order.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.common import CustomerRef, ExternalId
from schemas.orders import OrderIn

INGEST_SCHEMA_VERSION: Literal[1] = 1


class IngestKind(StrEnum):
    order = "order"
    earn = "earn"
    cancel = "cancel"
    delete = "delete"
    refund = "refund"


REVERSAL_KINDS = frozenset({IngestKind.cancel, IngestKind.delete, IngestKind.refund})


class RefundLineIn(BaseModel):
    """A refunded quantity of one order line, named by its ``line_ref`` or its ``sku``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line_ref: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    sku: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    quantity: Annotated[int, Field(strict=True, ge=1, le=100_000)]

    @model_validator(mode="after")
    def _named(self) -> RefundLineIn:
        if (self.line_ref is None) == (self.sku is None):
            raise ValueError("name the line by exactly one of line_ref or sku")
        return self


class ReversalBody(BaseModel):
    """Cancel, delete (everything left) or refund (``lines``) of an earlier order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    refund_id: ExternalId | None = None
    lines: Annotated[tuple[RefundLineIn, ...], Field(max_length=500)] | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None


class CardType(StrEnum):
    point = "point"
    stamp = "stamp"


class EarnBody(BaseModel):
    """An earn without order lines (Loyalite ``/webhook/pos``, ``POST /v1/earn``).

    ``card_type=point``: points on ``amount_cents`` by the org's spend rules.
    ``card_type=stamp``: ``stamps`` stamps straight onto ``stamp_card_id`` (or
    the default card).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    card_type: CardType
    amount_cents: Annotated[int, Field(strict=True, ge=0, le=10**12)] | None = None
    stamps: Annotated[int, Field(strict=True, ge=1, le=10_000)] | None = None
    stamp_card_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    occurred_at: AwareDatetime
    store_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class IngestEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = INGEST_SCHEMA_VERSION
    kind: IngestKind
    event_id: uuid.UUID
    org_id: uuid.UUID
    external_id: ExternalId
    customer: CustomerRef
    accepted_at: AwareDatetime
    order: OrderIn | None = None
    earn: EarnBody | None = None
    reversal: ReversalBody | None = None

    @model_validator(mode="after")
    def _body_matches_kind(self) -> IngestEvent:
        if self.kind is IngestKind.order and self.order is None:
            raise ValueError("an order event carries 'order'")
        if self.kind is IngestKind.earn and self.earn is None:
            raise ValueError("an earn event carries 'earn'")
        if self.kind in REVERSAL_KINDS and self.reversal is None:
            raise ValueError(f"a {self.kind.value} event carries 'reversal'")
        if self.kind is IngestKind.refund and (
            self.reversal is None or not self.reversal.refund_id or not self.reversal.lines
        ):
            raise ValueError("a refund carries refund_id and lines")
        return self

    @property
    def tx_external_id(self) -> str:
        """The idempotency key of this event's transaction row.

        A refund is keyed by order and refund id, so the same refund twice reverses once
        while distinct refunds of one order all apply.
        """
        if self.kind is IngestKind.refund and self.reversal is not None:
            return f"{self.external_id}#{self.reversal.refund_id}"
        return self.external_id

    @property
    def key(self) -> bytes:
        return partition_key(self.org_id, self.customer)


def partition_key(org_id: uuid.UUID, customer: CustomerRef) -> bytes:
    return f"{org_id}:{customer.key}".encode()


class DeadLetter(BaseModel):
    """What goes to ``punchline.dlq.v1``: the raw message and why it was refused."""

    schema_version: Literal[1] = 1
    reason: Annotated[str, Field(max_length=2000)]
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str
