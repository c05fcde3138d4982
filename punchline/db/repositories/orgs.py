from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from limits import parse
from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.apikeys import display_prefix, generate_key, hash_key
from punchline.db.sql import sql


@dataclass(frozen=True, slots=True)
class OrgRow:
    id: uuid.UUID
    name: str
    timezone: str
    currency: str
    verification_preset: str
    negative_balance_policy: str
    subscription_status: str


async def create_org(
    conn: AsyncConnection, *, name: str, timezone: str = "UTC", currency: str = "EUR"
) -> uuid.UUID:
    result = await conn.execute(
        sql("INSERT INTO orgs (name, timezone, currency) VALUES (:n, :tz, :c) RETURNING id"),
        {"n": name, "tz": timezone, "c": currency},
    )
    return uuid.UUID(str(result.scalar_one()))


async def load_orgs(conn: AsyncConnection, org_ids: list[uuid.UUID]) -> dict[uuid.UUID, OrgRow]:
    result = await conn.execute(
        sql(
            "SELECT id, name, timezone, currency, verification_preset, negative_balance_policy,"
            " subscription_status FROM orgs WHERE id = ANY(:ids)"
        ),
        {"ids": org_ids},
    )
    return {row.id: OrgRow(*row) for row in result}


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: uuid.UUID
    org_id: uuid.UUID
    scopes: tuple[str, ...]
    revoked: bool
    rate_limits: dict[str, str] | None = None


def check_rate_limits(rate_limits: dict[str, str]) -> None:
    """Refuse limits the ``limits`` library cannot parse (e.g. "1000/minute")."""
    for group, value in rate_limits.items():
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"rate limit for {group!r} is not valid: {value!r}") from exc


async def create_api_key(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    name: str,
    scopes: list[str],
    rate_limits: dict[str, str] | None = None,
) -> tuple[uuid.UUID, str]:
    """Store a new key and return (id, full key). The full key is never stored.

    ``rate_limits`` overrides the default limit of an endpoint group for this key,
    e.g. ``{"earn": "6000/minute"}``.
    """
    if rate_limits:
        check_rate_limits(rate_limits)
    key = generate_key()
    result = await conn.execute(
        sql(
            "INSERT INTO api_keys (org_id, name, key_hash, prefix, last4, scopes, rate_limits)"
            " VALUES (:org, :name, :hash, :prefix, :last4, :scopes, CAST(:limits AS jsonb))"
            " RETURNING id"
        ),
        {
            "org": org_id,
            "name": name,
            "hash": hash_key(key),
            "prefix": display_prefix(key),
            "last4": key[-4:],
            "scopes": scopes,
            "limits": orjson.dumps(rate_limits).decode() if rate_limits else None,
        },
    )
    return uuid.UUID(str(result.scalar_one())), key


async def find_key_by_hash(conn: AsyncConnection, key_hash: str) -> KeyRow | None:
    row = (
        await conn.execute(
            sql(
                "SELECT id, org_id, scopes, revoked_at IS NOT NULL AS revoked, rate_limits"
                " FROM api_keys WHERE key_hash = :h"
            ),
            {"h": key_hash},
        )
    ).first()
    if row is None:
        return None
    return KeyRow(
        id=row.id,
        org_id=row.org_id,
        scopes=tuple(row.scopes),
        revoked=row.revoked,
        rate_limits=row.rate_limits,
    )


async def touch_keys(conn: AsyncConnection, key_ids: list[uuid.UUID]) -> None:
    await conn.execute(
        sql("UPDATE api_keys SET last_used_at = now() WHERE id = ANY(:ids)"), {"ids": key_ids}
    )
