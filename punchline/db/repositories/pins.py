"""PIN challenges. Attempts are counted by one conditional UPDATE, so parallel
guesses can never use more than ``max_attempts`` of a challenge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = (
    "id, org_id, customer_id, action, pin_hash, attempts, max_attempts, created_at,"
    " expires_at, consumed_at"
)


@dataclass(frozen=True, slots=True)
class ChallengeRow:
    id: uuid.UUID
    org_id: uuid.UUID
    customer_id: int
    action: str
    pin_hash: str
    attempts: int
    max_attempts: int
    created_at: datetime
    expires_at: datetime
    consumed_at: datetime | None


async def create(
    conn: AsyncConnection,
    *,
    challenge_id: uuid.UUID,
    org_id: uuid.UUID,
    customer_id: int,
    action: str,
    pin_hash: str,
    max_attempts: int,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        sql(
            "INSERT INTO pin_challenges (id, org_id, customer_id, action, pin_hash,"
            " max_attempts, created_at, expires_at)"
            " VALUES (:id, :org, :cust, :action, :hash, :max, :created, :expires)"
        ),
        {
            "id": challenge_id,
            "org": org_id,
            "cust": customer_id,
            "action": action,
            "hash": pin_hash,
            "max": max_attempts,
            "created": created_at,
            "expires": expires_at,
        },
    )


async def latest(conn: AsyncConnection, *, customer_id: int, action: str) -> ChallengeRow | None:
    """The newest challenge of this customer for this action: the only one a PIN answers."""
    row = (
        await conn.execute(
            sql(
                f"SELECT {_COLUMNS} FROM pin_challenges"
                " WHERE customer_id = :cust AND action = :action"
                " ORDER BY seq DESC LIMIT 1"
            ),
            {"cust": customer_id, "action": action},
        )
    ).first()
    return ChallengeRow(*row) if row else None


async def live_for_customer(
    conn: AsyncConnection, *, customer_id: int, now: datetime
) -> list[ChallengeRow]:
    """The newest challenge per action, if still open (unconsumed, unexpired, tries left)."""
    result = await conn.execute(
        sql(
            f"SELECT {_COLUMNS} FROM ("
            f" SELECT DISTINCT ON (action) {_COLUMNS}, seq FROM pin_challenges"
            " WHERE customer_id = :cust ORDER BY action, seq DESC) newest"
            " WHERE consumed_at IS NULL AND expires_at > :now AND attempts < max_attempts"
            " ORDER BY seq DESC"
        ),
        {"cust": customer_id, "now": now},
    )
    return [ChallengeRow(*row) for row in result]


async def take_attempt(conn: AsyncConnection, challenge_id: uuid.UUID) -> int | None:
    """Use one attempt; the attempt number, or None when none is left (or it is consumed)."""
    row = (
        await conn.execute(
            sql(
                "UPDATE pin_challenges SET attempts = attempts + 1"
                " WHERE id = :id AND attempts < max_attempts AND consumed_at IS NULL"
                " RETURNING attempts"
            ),
            {"id": challenge_id},
        )
    ).first()
    return int(row.attempts) if row else None


async def consume(conn: AsyncConnection, challenge_id: uuid.UUID, *, now: datetime) -> bool:
    """Spend a verified challenge; False if another request spent it first."""
    row = (
        await conn.execute(
            sql(
                "UPDATE pin_challenges SET consumed_at = :now"
                " WHERE id = :id AND consumed_at IS NULL RETURNING id"
            ),
            {"id": challenge_id, "now": now},
        )
    ).first()
    return row is not None
