"""Webhook deliveries: one row per (endpoint, event), its attempts and its outcome.

Statuses: ``pending`` → ``succeeded`` | ``failed`` (attempts exhausted) |
``cancelled`` (endpoint disabled). The unique (endpoint_id, event_id) makes the
fan-out idempotent when Kafka redelivers an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_LOG_COLUMNS = (
    "id, event_id, event_type, status, attempts, next_attempt_at, last_attempt_at,"
    " last_status_code, last_error, created_at, delivered_at"
)


@dataclass(frozen=True, slots=True)
class NewDelivery:
    org_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    body: str


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    id: int
    event_id: uuid.UUID
    event_type: str
    body: str
    attempts: int
    wait_s: float  # until next_attempt_at, by the database clock; 0 when due


@dataclass(frozen=True, slots=True)
class DeliveryLog:
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


async def enqueue(conn: AsyncConnection, deliveries: Sequence[NewDelivery]) -> int:
    """Insert the deliveries that do not exist yet; return how many were new."""
    if not deliveries:
        return 0
    result = await conn.execute(
        sql(
            "INSERT INTO webhook_deliveries (org_id, endpoint_id, event_id, event_type, body)"
            " SELECT * FROM unnest(CAST(:orgs AS uuid[]), CAST(:endpoints AS uuid[]),"
            "   CAST(:events AS uuid[]), CAST(:types AS text[]), CAST(:bodies AS text[]))"
            " ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id"
        ),
        {
            "orgs": [d.org_id for d in deliveries],
            "endpoints": [d.endpoint_id for d in deliveries],
            "events": [d.event_id for d in deliveries],
            "types": [d.event_type for d in deliveries],
            "bodies": [d.body for d in deliveries],
        },
    )
    return len(result.all())


async def pending(
    conn: AsyncConnection, *, endpoint_id: uuid.UUID, limit: int
) -> list[PendingDelivery]:
    """The endpoint's pending deliveries in event order, due or not."""
    result = await conn.execute(
        sql(
            "SELECT id, event_id, event_type, body, attempts,"
            " GREATEST(0, EXTRACT(EPOCH FROM next_attempt_at - clock_timestamp())) AS wait_s"
            " FROM webhook_deliveries WHERE endpoint_id = :e AND status = 'pending'"
            " ORDER BY id LIMIT :n"
        ),
        {"e": endpoint_id, "n": limit},
    )
    return [
        PendingDelivery(r.id, r.event_id, r.event_type, r.body, r.attempts, float(r.wait_s))
        for r in result
    ]


async def record_attempt(
    conn: AsyncConnection,
    *,
    delivery_id: int,
    ok: bool,
    status_code: int | None,
    error: str | None,
    max_attempts: int,
) -> str:
    """Count one attempt and return the delivery's new status."""
    row = (
        await conn.execute(
            sql(
                "UPDATE webhook_deliveries SET attempts = attempts + 1,"
                " last_attempt_at = clock_timestamp(), last_status_code = :code,"
                " last_error = :error,"
                " delivered_at = CASE WHEN :ok THEN clock_timestamp() END,"
                " status = CASE WHEN :ok THEN 'succeeded'"
                "   WHEN attempts + 1 >= :max THEN 'failed' ELSE 'pending' END"
                " WHERE id = :id AND status = 'pending' RETURNING status"
            ),
            {
                "id": delivery_id,
                "ok": ok,
                "code": status_code,
                "error": error[:500] if error else None,
                "max": max_attempts,
            },
        )
    ).first()
    return str(row.status) if row else "cancelled"


async def schedule(conn: AsyncConnection, *, delivery_id: int, after_s: float) -> None:
    await conn.execute(
        sql(
            "UPDATE webhook_deliveries"
            " SET next_attempt_at = clock_timestamp() + make_interval(secs => :s)"
            " WHERE id = :id AND status = 'pending'"
        ),
        {"id": delivery_id, "s": after_s},
    )


async def log_page(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[DeliveryLog], int]:
    """Newest first."""
    where = " FROM webhook_deliveries WHERE org_id = :org AND endpoint_id = :e"
    params: dict[str, object] = {"org": org_id, "e": endpoint_id, "n": limit, "o": offset}
    if status is not None:
        where += " AND status = :status"
        params["status"] = status
    total = (await conn.execute(sql("SELECT count(*)" + where), params)).scalar_one()
    result = await conn.execute(
        sql(f"SELECT {_LOG_COLUMNS}{where} ORDER BY id DESC LIMIT :n OFFSET :o"), params
    )
    return [DeliveryLog(*row) for row in result], int(total)
