"""An org's settings as its admins read and change them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = (
    "id, name, timezone, currency, verification_preset, negative_balance_policy,"
    " subscription_status, created_at"
)
EDITABLE = frozenset(
    {
        "name",
        "timezone",
        "currency",
        "verification_preset",
        "negative_balance_policy",
        "subscription_status",
    }
)


@dataclass(frozen=True, slots=True)
class OrgSettings:
    id: uuid.UUID
    name: str
    timezone: str
    currency: str
    verification_preset: str
    negative_balance_policy: str
    subscription_status: str
    created_at: datetime


async def get(conn: AsyncConnection, org_id: uuid.UUID) -> OrgSettings | None:
    row = (
        await conn.execute(sql(f"SELECT {_COLUMNS} FROM orgs WHERE id = :id"), {"id": org_id})
    ).first()
    return OrgSettings(*row) if row else None


async def update(
    conn: AsyncConnection, org_id: uuid.UUID, changes: dict[str, str]
) -> OrgSettings | None:
    if not set(changes) <= EDITABLE:
        raise ValueError(f"not editable: {sorted(set(changes) - EDITABLE)}")
    if not changes:
        return await get(conn, org_id)
    assignments = ", ".join(f"{name} = :{name}" for name in sorted(changes))
    row = (
        await conn.execute(
            sql(f"UPDATE orgs SET {assignments} WHERE id = :id RETURNING {_COLUMNS}"),
            {**changes, "id": org_id},
        )
    ).first()
    return OrgSettings(*row) if row else None
