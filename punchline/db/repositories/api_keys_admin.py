"""Listing and revoking an org's API keys (creation lives in :mod:`orgs`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = "id, name, prefix, last4, scopes, rate_limits, created_at, last_used_at, revoked_at"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: uuid.UUID
    name: str
    prefix: str
    last4: str
    scopes: list[str]
    rate_limits: dict[str, str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


async def get(conn: AsyncConnection, *, org_id: uuid.UUID, key_id: uuid.UUID) -> KeyInfo | None:
    row = (
        await conn.execute(
            sql(f"SELECT {_COLUMNS} FROM api_keys WHERE org_id = :org AND id = :id"),
            {"org": org_id, "id": key_id},
        )
    ).first()
    return KeyInfo(*row) if row else None


async def list_keys(
    conn: AsyncConnection, *, org_id: uuid.UUID, include_revoked: bool
) -> list[KeyInfo]:
    statement = f"SELECT {_COLUMNS} FROM api_keys WHERE org_id = :org"
    if not include_revoked:
        statement += " AND revoked_at IS NULL"
    result = await conn.execute(sql(statement + " ORDER BY created_at, id"), {"org": org_id})
    return [KeyInfo(*row) for row in result]


async def revoke(conn: AsyncConnection, *, org_id: uuid.UUID, key_id: uuid.UUID) -> KeyInfo | None:
    """Revoke once; revoking a revoked key keeps its first revocation time."""
    await conn.execute(
        sql(
            "UPDATE api_keys SET revoked_at = now()"
            " WHERE org_id = :org AND id = :id AND revoked_at IS NULL"
        ),
        {"org": org_id, "id": key_id},
    )
    return await get(conn, org_id=org_id, key_id=key_id)
