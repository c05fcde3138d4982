"""The reward catalogue: what a customer can buy with points."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = (
    "id, org_id, name, description, points_cost, type, value, required_tier, icon,"
    " validity_days, active"
)


@dataclass(frozen=True, slots=True)
class RewardRow:
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    description: str | None
    points_cost: int
    type: str
    value: int
    required_tier: str | None
    icon: str | None
    validity_days: int
    active: bool


async def list_active(conn: AsyncConnection, org_id: uuid.UUID) -> list[RewardRow]:
    result = await conn.execute(
        sql(
            f"SELECT {_COLUMNS} FROM rewards WHERE org_id = :org AND active"
            " ORDER BY points_cost, name, id"
        ),
        {"org": org_id},
    )
    return [RewardRow(*row) for row in result]


async def get_active(
    conn: AsyncConnection, *, org_id: uuid.UUID, reward_id: uuid.UUID
) -> RewardRow | None:
    row = (
        await conn.execute(
            sql(f"SELECT {_COLUMNS} FROM rewards WHERE org_id = :org AND id = :id AND active"),
            {"org": org_id, "id": reward_id},
        )
    ).first()
    return RewardRow(*row) if row else None


async def create(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    name: str,
    points_cost: int,
    type: str,
    value: int = 0,
    description: str | None = None,
    required_tier: str | None = None,
    icon: str | None = None,
    validity_days: int = 30,
    active: bool = True,
) -> RewardRow:
    row = (
        await conn.execute(
            sql(
                "INSERT INTO rewards (org_id, name, description, points_cost, type, value,"
                " required_tier, icon, validity_days, active)"
                " VALUES (:org, :name, :description, :cost, :type, :value, :tier, :icon,"
                f" :days, :active) RETURNING {_COLUMNS}"
            ),
            {
                "org": org_id,
                "name": name,
                "description": description,
                "cost": points_cost,
                "type": type,
                "value": value,
                "tier": required_tier,
                "icon": icon,
                "days": validity_days,
                "active": active,
            },
        )
    ).one()
    return RewardRow(*row)


async def list_all(conn: AsyncConnection, org_id: uuid.UUID) -> list[RewardRow]:
    """Every reward of the org, retired ones included (the merchant's view)."""
    result = await conn.execute(
        sql(f"SELECT {_COLUMNS} FROM rewards WHERE org_id = :org ORDER BY created_at, id"),
        {"org": org_id},
    )
    return [RewardRow(*row) for row in result]


_UPDATABLE = frozenset(
    {
        "name",
        "description",
        "points_cost",
        "value",
        "required_tier",
        "icon",
        "validity_days",
        "active",
    }
)


async def update(
    conn: AsyncConnection, *, org_id: uuid.UUID, reward_id: uuid.UUID, changes: dict[str, Any]
) -> RewardRow | None:
    """Change the given fields of one of the org's rewards; None when it is not the org's."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        row = (
            await conn.execute(
                sql(f"SELECT {_COLUMNS} FROM rewards WHERE org_id = :org AND id = :id"),
                {"org": org_id, "id": reward_id},
            )
        ).first()
        return RewardRow(*row) if row else None
    assignments = ", ".join(f"{name} = :{name}" for name in sorted(changes))
    row = (
        await conn.execute(
            sql(
                f"UPDATE rewards SET {assignments} WHERE org_id = :org AND id = :id"
                f" RETURNING {_COLUMNS}"
            ),
            {**changes, "org": org_id, "id": reward_id},
        )
    ).first()
    return RewardRow(*row) if row else None
