"""Reads of transaction outcomes: the status endpoint and the result waiter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = (
    "org_id, external_id, kind, event_id, status, error_code, points, stamps, coupons,"
    " rules_applied, rule_set_version, accepted_at, applied_at, stream_key, reversed"
)


@dataclass(frozen=True, slots=True)
class TransactionRow:
    org_id: uuid.UUID
    external_id: str
    kind: str
    event_id: uuid.UUID
    status: str
    error_code: str | None
    points: int
    stamps: dict[str, int]
    coupons: list[dict[str, Any]]
    rules_applied: list[dict[str, Any]]
    rule_set_version: int | None
    accepted_at: datetime
    applied_at: datetime
    stream_key: str | None = None
    reversed: dict[str, Any] | None = None


async def get_transaction(
    conn: AsyncConnection, *, org_id: uuid.UUID, external_id: str, kind: str = "order"
) -> TransactionRow | None:
    row = (
        await conn.execute(
            sql(
                f"SELECT {_COLUMNS} FROM transactions"
                " WHERE org_id = :org AND external_id = :ext AND kind = :kind"
            ),
            {"org": org_id, "ext": external_id, "kind": kind},
        )
    ).first()
    return TransactionRow(*row) if row else None


async def get_transactions(
    conn: AsyncConnection, keys: list[tuple[uuid.UUID, str, str]]
) -> dict[tuple[uuid.UUID, str, str], TransactionRow]:
    """Many outcomes in one round trip, keyed (org_id, external_id, kind)."""
    if not keys:
        return {}
    result = await conn.execute(
        sql(
            f"SELECT {', '.join('t.' + c.strip() for c in _COLUMNS.split(','))}"
            " FROM unnest(CAST(:orgs AS uuid[]), CAST(:exts AS text[]), CAST(:kinds AS text[]))"
            "   AS k(org_id, external_id, kind)"
            " JOIN transactions t USING (org_id, external_id, kind)"
        ),
        {
            "orgs": [k[0] for k in keys],
            "exts": [k[1] for k in keys],
            "kinds": [k[2] for k in keys],
        },
    )
    rows = [TransactionRow(*row) for row in result]
    return {(r.org_id, r.external_id, r.kind): r for r in rows}


async def history(
    conn: AsyncConnection, *, org_id: uuid.UUID, external_id: str
) -> list[TransactionRow]:
    """The cancels, deletes and refunds of one order, oldest first."""
    result = await conn.execute(
        sql(
            f"SELECT {_COLUMNS} FROM transactions"
            " WHERE org_id = :org AND parent_external_id = :ext ORDER BY id"
        ),
        {"org": org_id, "ext": external_id},
    )
    return [TransactionRow(*row) for row in result]
