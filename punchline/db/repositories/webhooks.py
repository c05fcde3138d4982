"""Webhook endpoints: registration, listing, the fan-out's look-up and delivery leases."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = "id, url, events, description, active, created_at, disabled_at"


@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class Subscription:
    id: uuid.UUID
    org_id: uuid.UUID
    events: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Target:
    """What the dispatcher needs to sign and send."""

    id: uuid.UUID
    url: str
    secret: str
    active: bool


async def create(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    url: str,
    events: list[str],
    secret: str,
    description: str | None,
) -> EndpointRow:
    row = (
        await conn.execute(
            sql(
                "INSERT INTO webhook_endpoints (org_id, url, events, secret, description)"
                f" VALUES (:org, :url, :events, :secret, :description) RETURNING {_COLUMNS}"
            ),
            {
                "org": org_id,
                "url": url,
                "events": events,
                "secret": secret,
                "description": description,
            },
        )
    ).one()
    return EndpointRow(*row)


async def get(
    conn: AsyncConnection, *, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> EndpointRow | None:
    row = (
        await conn.execute(
            sql(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE org_id = :org AND id = :id"),
            {"org": org_id, "id": endpoint_id},
        )
    ).first()
    return EndpointRow(*row) if row else None


async def list_endpoints(conn: AsyncConnection, *, org_id: uuid.UUID) -> list[EndpointRow]:
    result = await conn.execute(
        sql(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE org_id = :org ORDER BY created_at"),
        {"org": org_id},
    )
    return [EndpointRow(*row) for row in result]


async def disable(
    conn: AsyncConnection, *, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> EndpointRow | None:
    """Stop deliveries to an endpoint; its pending deliveries are cancelled, its log kept."""
    await conn.execute(
        sql(
            "UPDATE webhook_endpoints SET active = false, disabled_at = clock_timestamp()"
            " WHERE org_id = :org AND id = :id AND active"
        ),
        {"org": org_id, "id": endpoint_id},
    )
    await conn.execute(
        sql(
            "UPDATE webhook_deliveries SET status = 'cancelled'"
            " WHERE endpoint_id = :id AND org_id = :org AND status = 'pending'"
        ),
        {"org": org_id, "id": endpoint_id},
    )
    return await get(conn, org_id=org_id, endpoint_id=endpoint_id)


async def subscriptions(
    conn: AsyncConnection, org_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Subscription]]:
    """Active endpoints of the given orgs, by org."""
    result = await conn.execute(
        sql(
            "SELECT id, org_id, events, created_at FROM webhook_endpoints"
            " WHERE org_id = ANY(:orgs) AND active"
        ),
        {"orgs": sorted(set(org_ids))},
    )
    found: dict[uuid.UUID, list[Subscription]] = {}
    for row in result:
        found.setdefault(row.org_id, []).append(Subscription(*row))
    return found


async def target(conn: AsyncConnection, endpoint_id: uuid.UUID) -> Target | None:
    row = (
        await conn.execute(
            sql("SELECT id, url, secret, active FROM webhook_endpoints WHERE id = :id"),
            {"id": endpoint_id},
        )
    ).first()
    return Target(*row) if row else None


async def claim_due(
    conn: AsyncConnection, *, owner: uuid.UUID, lease_s: float, limit: int
) -> list[uuid.UUID]:
    """Lease endpoints that have a due delivery and no live lease."""
    result = await conn.execute(
        sql(
            "UPDATE webhook_endpoints SET lease_owner = :owner,"
            " lease_until = clock_timestamp() + make_interval(secs => :lease)"
            " WHERE id IN ("
            "   SELECT e.id FROM webhook_endpoints e"
            "   WHERE e.active AND (e.lease_until IS NULL OR e.lease_until < clock_timestamp())"
            "   AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id"
            "     AND d.status = 'pending' AND d.next_attempt_at <= clock_timestamp())"
            "   LIMIT :limit FOR UPDATE SKIP LOCKED)"
            " RETURNING id"
        ),
        {"owner": owner, "lease": lease_s, "limit": limit},
    )
    return [row.id for row in result]


async def renew_lease(
    conn: AsyncConnection, *, endpoint_id: uuid.UUID, owner: uuid.UUID, lease_s: float
) -> bool:
    """False when the lease was lost (expired and taken) or the endpoint was disabled."""
    row = (
        await conn.execute(
            sql(
                "UPDATE webhook_endpoints"
                " SET lease_until = clock_timestamp() + make_interval(secs => :lease)"
                " WHERE id = :id AND lease_owner = :owner AND active RETURNING id"
            ),
            {"id": endpoint_id, "owner": owner, "lease": lease_s},
        )
    ).first()
    return row is not None


async def release_lease(conn: AsyncConnection, *, endpoint_id: uuid.UUID, owner: uuid.UUID) -> None:
    await conn.execute(
        sql(
            "UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL"
            " WHERE id = :id AND lease_owner = :owner"
        ),
        {"id": endpoint_id, "owner": owner},
    )
