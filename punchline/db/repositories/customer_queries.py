"""Reads of customers and their balances for the POS look-ups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = (
    "id, org_id, code, email, phone, name, birthday, status, tier, lifetime_points, created_at"
)


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: int
    org_id: uuid.UUID
    code: str
    email: str | None
    phone: str | None
    name: str | None
    birthday: date | None
    status: str
    tier: str | None
    lifetime_points: int
    created_at: datetime


async def find(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    code: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> CustomerRecord | None:
    """By exactly one of code (upper-case hex), email (any case) or E.164 phone."""
    if code is not None:
        where, value = "code = :v", code.upper()
    elif email is not None:
        where, value = "lower(email) = lower(:v)", email
    elif phone is not None:
        where, value = "phone = :v", phone
    else:
        raise ValueError("give a code, an email or a phone")
    row = (
        await conn.execute(
            sql(
                f"SELECT {_COLUMNS} FROM customers"
                f" WHERE org_id = :org AND erased_at IS NULL AND {where}"
                " ORDER BY id LIMIT 1"
            ),
            {"org": org_id, "v": value},
        )
    ).first()
    return CustomerRecord(*row) if row else None


async def balances(conn: AsyncConnection, customer_id: int) -> dict[str, int]:
    """Every wallet of the customer: ``{"points": n, "stamps:<card>": n, …}``."""
    result = await conn.execute(
        sql("SELECT asset, balance FROM wallets WHERE customer_id = :c"), {"c": customer_id}
    )
    return {row.asset: int(row.balance) for row in result}


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    query: str,
    phone_digits: str | None,
    limit: int,
    offset: int,
) -> tuple[list[CustomerRecord], int]:
    """Customers whose name contains ``query`` (any case), whose phone contains
    ``phone_digits``, or whose code is ``query``; ordered by name, then id."""
    params = {
        "org": org_id,
        "name": f"%{_like_escape(query.lower())}%",
        "phone": f"%{_like_escape(phone_digits)}%" if phone_digits else None,
        "code": query.upper(),
        "limit": limit,
        "offset": offset,
    }
    where = (
        " FROM customers WHERE org_id = :org AND erased_at IS NULL AND ("
        " lower(name) LIKE :name OR code = :code"
        " OR (CAST(:phone AS text) IS NOT NULL AND phone LIKE :phone))"
    )
    total = int((await conn.execute(sql("SELECT count(*)" + where), params)).scalar_one())
    result = await conn.execute(
        sql(
            f"SELECT {_COLUMNS}{where}"
            " ORDER BY lower(name) NULLS LAST, id LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    return [CustomerRecord(*row) for row in result], total
