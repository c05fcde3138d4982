"""The order body a POS posts to ``POST /v1/orders``."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from schemas.common import Cents, CustomerRef, ExternalId, UtcDatetime, WireModel

Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

MAX_LINES = 500


class OrderLine(WireModel):
    # "a line needs a name or a sku", said in the schema too, so clients and fuzzers see it.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["name"], "properties": {"name": {"type": "string"}}},
                {"required": ["sku"], "properties": {"sku": {"type": "string"}}},
            ]
        }
    )

    line_ref: Text64 | None = None
    sku: Text64 | None = None
    name: Text200 | None = Field(
        default=None, description="optional when the sku is in the product catalogue"
    )
    category: Text64 | None = None
    quantity: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    unit_price_cents: Cents
    discount_cents: Cents = 0

    @model_validator(mode="after")
    def _named(self) -> OrderLine:
        if self.name is None and self.sku is None:
            raise ValueError("a line needs a name or a sku")
        return self

    @model_validator(mode="after")
    def _discount_within_line(self) -> OrderLine:
        if self.discount_cents > self.quantity * self.unit_price_cents:
            raise ValueError("discount_cents exceeds the line total")
        return self


class OrderIn(WireModel):
    customer: CustomerRef
    external_id: ExternalId
    occurred_at: UtcDatetime
    store_id: Text64 | None = None
    currency: Currency
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_LINES)]
    amount_cents: Cents | None = None

    @model_validator(mode="after")
    def _unique_line_refs(self) -> OrderIn:
        refs = [line.line_ref for line in self.lines if line.line_ref is not None]
        if len(refs) != len(set(refs)):
            raise ValueError("line_ref values must be unique within an order")
        return self
