"""Coupons: look-up by token, atomic consumption, and coupons issued for rewards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = (
    "c.id, c.org_id, c.customer_id, cu.code AS customer_code, c.token, c.source, c.card_id,"
    " c.reward_id, c.reward_name, c.reward_type, c.reward_value, c.status, c.issued_at,"
    " c.expires_at, c.redeemed_at"
)


@dataclass(frozen=True, slots=True)
class CouponRow:
    id: uuid.UUID
    org_id: uuid.UUID
    customer_id: int
    customer_code: str
    token: str
    source: str
    card_id: str | None
    reward_id: uuid.UUID | None
    reward_name: str
    reward_type: str
    reward_value: int
    status: str
    issued_at: datetime
    expires_at: datetime | None
    redeemed_at: datetime | None


async def by_token(conn: AsyncConnection, *, org_id: uuid.UUID, token: str) -> CouponRow | None:
    row = (
        await conn.execute(
            sql(
                f"SELECT {_COLUMNS} FROM coupons c JOIN customers cu ON cu.id = c.customer_id"
                " WHERE c.org_id = :org AND c.token = :token"
            ),
            {"org": org_id, "token": token},
        )
    ).first()
    return CouponRow(*row) if row else None


async def consume(
    conn: AsyncConnection, *, org_id: uuid.UUID, token: str, now: datetime
) -> CouponRow | None:
    """Mark an issued, unexpired coupon redeemed. Exactly one concurrent caller wins;
    the others get None (and read the coupon again to say why)."""
    row = (
        await conn.execute(
            sql(
                "WITH used AS ("
                " UPDATE coupons SET status = 'redeemed', redeemed_at = :now"
                " WHERE org_id = :org AND token = :token AND status = 'issued'"
                " AND (expires_at IS NULL OR expires_at > :now)"
                " RETURNING *)"
                f" SELECT {_COLUMNS} FROM used c JOIN customers cu ON cu.id = c.customer_id"
            ),
            {"org": org_id, "token": token, "now": now},
        )
    ).first()
    return CouponRow(*row) if row else None


async def issue_for_reward(
    conn: AsyncConnection,
    *,
    coupon_id: uuid.UUID,
    org_id: uuid.UUID,
    customer_id: int,
    token: str,
    reward_id: uuid.UUID,
    reward_name: str,
    reward_type: str,
    reward_value: int,
    transaction_id: int,
    issued_at: datetime,
    expires_at: datetime,
) -> uuid.UUID:
    row = await conn.execute(
        sql(
            "INSERT INTO coupons (id, org_id, customer_id, token, source, reward_id,"
            " transaction_id, reward_name, reward_type, reward_value, issued_at, expires_at)"
            " VALUES (:id, :org, :cust, :token, 'reward', :reward, :tx, :name, :type, :value,"
            " :issued, :expires) RETURNING id"
        ),
        {
            "id": coupon_id,
            "org": org_id,
            "cust": customer_id,
            "token": token,
            "reward": reward_id,
            "tx": transaction_id,
            "name": reward_name,
            "type": reward_type,
            "value": reward_value,
            "issued": issued_at,
            "expires": expires_at,
        },
    )
    return uuid.UUID(str(row.scalar_one()))
