"""Idempotency of the synchronous paths: one ``transactions`` row per (org, external_id,
kind) holds the request and the first answer, so a retry replays it and moves nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    customer_id: int | None
    request: dict[str, Any]
    response: dict[str, Any]


async def get(
    conn: AsyncConnection, *, org_id: uuid.UUID, external_id: str, kind: str
) -> StoredAnswer | None:
    row = (
        await conn.execute(
            sql(
                "SELECT customer_id, request, response FROM transactions"
                " WHERE org_id = :org AND external_id = :ext AND kind = :kind"
                " AND response IS NOT NULL"
            ),
            {"org": org_id, "ext": external_id, "kind": kind},
        )
    ).first()
    return StoredAnswer(row.customer_id, row.request or {}, row.response) if row else None


async def claim(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    external_id: str,
    kind: str,
    customer_id: int,
    points: int,
    stamps: dict[str, int],
    coupons: list[dict[str, Any]],
    request: dict[str, Any],
    response: dict[str, Any],
    now: datetime,
) -> int | None:
    """Insert the applied transaction with its answer; None when the key is taken.

    A concurrent claim of the same key waits here for the other transaction, and
    gets None if that one commits.
    """
    row = (
        await conn.execute(
            sql(
                "INSERT INTO transactions (org_id, external_id, kind, event_id, customer_id,"
                " status, points, stamps, coupons, rules_applied, occurred_at, accepted_at,"
                " request, response)"
                " VALUES (:org, :ext, :kind, :event, :cust, 'applied', :points,"
                " CAST(:stamps AS jsonb), CAST(:coupons AS jsonb), '[]', :now, :now,"
                " CAST(:request AS jsonb), CAST(:response AS jsonb))"
                " ON CONFLICT (org_id, external_id, kind) DO NOTHING RETURNING id"
            ),
            {
                "org": org_id,
                "ext": external_id,
                "kind": kind,
                "event": uuid.uuid4(),
                "cust": customer_id,
                "points": points,
                "stamps": orjson.dumps(stamps).decode(),
                "coupons": orjson.dumps(coupons).decode(),
                "now": now,
                "request": orjson.dumps(request).decode(),
                "response": orjson.dumps(response).decode(),
            },
        )
    ).first()
    return int(row.id) if row else None
