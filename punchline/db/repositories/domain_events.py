"""Domain events of the synchronous paths, written to the outbox in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql


async def add(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    customer_id: int | None,
    event_type: str,
    payload: dict[str, Any],
) -> uuid.UUID:
    row = await conn.execute(
        sql(
            "INSERT INTO outbox (org_id, customer_id, event_type, payload)"
            " VALUES (:org, :cust, :type, CAST(:payload AS jsonb)) RETURNING event_id"
        ),
        {
            "org": org_id,
            "cust": customer_id,
            "type": event_type,
            "payload": orjson.dumps(payload).decode(),
        },
    )
    return uuid.UUID(str(row.scalar_one()))
