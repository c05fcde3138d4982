"""The relay's side of the outbox: claim unpublished rows in order, mark them published.

Several relays may run. Each takes a batch with ``FOR UPDATE SKIP LOCKED`` and
then drops any row whose customer has an older unpublished row held by another
relay: that customer's events wait for the other relay, so they stay in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_CLAIM = """
WITH locked AS MATERIALIZED (
    SELECT id, org_id, customer_id FROM outbox
    WHERE published_at IS NULL
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
SELECT o.id, o.event_id, o.org_id, o.customer_id, c.code AS customer_code, o.event_type,
       o.payload, o.created_at
FROM locked l
JOIN outbox o ON o.id = l.id
LEFT JOIN customers c ON c.id = o.customer_id
WHERE NOT EXISTS (
    SELECT 1 FROM outbox e
    WHERE e.published_at IS NULL
      AND e.org_id = l.org_id
      AND (e.customer_id = l.customer_id OR (e.customer_id IS NULL AND l.customer_id IS NULL))
      AND e.id < l.id
      AND e.id NOT IN (SELECT id FROM locked)
)
ORDER BY o.id
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: uuid.UUID
    org_id: uuid.UUID
    customer_id: int | None
    customer_code: str | None
    event_type: str
    payload: dict[str, Any]
    created_at: datetime

    @property
    def key(self) -> bytes:
        """Events of one customer share a key, hence a partition, hence an order."""
        suffix = "" if self.customer_id is None else f":{self.customer_id}"
        return f"{self.org_id}{suffix}".encode()


async def claim(conn: AsyncConnection, *, limit: int) -> list[OutboxRow]:
    """Lock up to ``limit`` publishable rows, oldest first, until the transaction ends."""
    result = await conn.execute(sql(_CLAIM), {"limit": limit})
    return [OutboxRow(*row) for row in result]


async def mark_published(conn: AsyncConnection, ids: list[int]) -> None:
    await conn.execute(
        sql("UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY(:ids)"),
        {"ids": ids},
    )


async def unpublished_count(conn: AsyncConnection) -> int:
    return int(
        (
            await conn.execute(sql("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
        ).scalar_one()
    )
