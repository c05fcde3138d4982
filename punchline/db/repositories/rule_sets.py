"""Versioned rule sets: one immutable JSONB row per version; the highest is active."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql


@dataclass(frozen=True, slots=True)
class StoredRuleSet:
    org_id: uuid.UUID
    version: int
    body: dict[str, Any]
    created_at: datetime
    created_by: str | None


async def insert_version(
    conn: AsyncConnection, *, org_id: uuid.UUID, body: str, created_by: str | None
) -> StoredRuleSet:
    """Store ``body`` (validated JSON) as the next version. Serialised per org by a row lock."""
    await conn.execute(sql("SELECT id FROM orgs WHERE id = :org FOR UPDATE"), {"org": org_id})
    row = (
        await conn.execute(
            sql(
                "INSERT INTO rule_sets (org_id, version, body, created_by)"
                " SELECT :org, COALESCE(max(version), 0) + 1, CAST(:body AS jsonb), :by"
                " FROM rule_sets WHERE org_id = :org"
                " RETURNING org_id, version, body, created_at, created_by"
            ),
            {"org": org_id, "body": body, "by": created_by},
        )
    ).one()
    return StoredRuleSet(*row)


async def active(conn: AsyncConnection, org_id: uuid.UUID) -> StoredRuleSet | None:
    row = (
        await conn.execute(
            sql(
                "SELECT org_id, version, body, created_at, created_by FROM rule_sets"
                " WHERE org_id = :org ORDER BY version DESC LIMIT 1"
            ),
            {"org": org_id},
        )
    ).first()
    return StoredRuleSet(*row) if row else None


async def versions(conn: AsyncConnection, org_id: uuid.UUID) -> list[StoredRuleSet]:
    result = await conn.execute(
        sql(
            "SELECT org_id, version, body, created_at, created_by FROM rule_sets"
            " WHERE org_id = :org ORDER BY version DESC"
        ),
        {"org": org_id},
    )
    return [StoredRuleSet(*row) for row in result]


async def active_versions(conn: AsyncConnection, org_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The active version number of each org that has one (cheap cache validation)."""
    result = await conn.execute(
        sql(
            "SELECT org_id, max(version) AS version FROM rule_sets"
            " WHERE org_id = ANY(CAST(:orgs AS uuid[])) GROUP BY org_id"
        ),
        {"orgs": org_ids},
    )
    return {row.org_id: row.version for row in result}


async def load_versions(
    conn: AsyncConnection, wanted: list[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], dict[str, Any]]:
    if not wanted:
        return {}
    result = await conn.execute(
        sql(
            "SELECT r.org_id, r.version, r.body FROM rule_sets r"
            " JOIN unnest(CAST(:orgs AS uuid[]), CAST(:vers AS int[])) AS w(org_id, version)"
            " USING (org_id, version)"
        ),
        {"orgs": [w[0] for w in wanted], "vers": [w[1] for w in wanted]},
    )
    return {(row.org_id, row.version): row.body for row in result}
