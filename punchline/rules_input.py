"""Wire models (schemas/) → the rule engine's input types (rules/).

Shared by the worker and the simulator, so both evaluate exactly the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import rules
from schemas.events import CardType, EarnBody
from schemas.orders import OrderLine


def lines_to_rules(lines: Sequence[OrderLine]) -> tuple[rules.Line, ...]:
    """Lines without a ``line_ref`` get their 1-based position, so refunds can name them."""
    return tuple(
        rules.Line(
            line_ref=line.line_ref or str(i),
            name=line.name or line.sku or "",
            quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
            sku=line.sku,
            category=line.category,
            discount_cents=line.discount_cents,
        )
        for i, line in enumerate(lines, start=1)
    )


def order_to_rules(
    *,
    lines: Sequence[OrderLine],
    occurred_at: datetime,
    timezone: str,
    amount_cents: int | None = None,
    store_id: str | None = None,
) -> rules.Order:
    return rules.Order(
        occurred_at=occurred_at,
        timezone=timezone,
        lines=lines_to_rules(lines),
        amount_cents=amount_cents,
        store_id=store_id,
    )


def stamps_to_rules(
    *,
    stamps: int,
    occurred_at: datetime,
    timezone: str,
    card_id: str | None = None,
    store_id: str | None = None,
) -> rules.Order:
    return rules.Order(
        occurred_at=occurred_at,
        timezone=timezone,
        lines=(),
        store_id=store_id,
        direct_stamps=stamps,
        stamp_card_id=card_id,
    )


def earn_to_rules(earn: EarnBody, timezone: str) -> rules.Order:
    if earn.card_type is CardType.stamp:
        return stamps_to_rules(
            stamps=earn.stamps or 0,
            occurred_at=earn.occurred_at,
            timezone=timezone,
            card_id=earn.stamp_card_id,
            store_id=earn.store_id,
        )
    return order_to_rules(
        lines=(),
        occurred_at=earn.occurred_at,
        timezone=timezone,
        amount_cents=earn.amount_cents or 0,
        store_id=earn.store_id,
    )
