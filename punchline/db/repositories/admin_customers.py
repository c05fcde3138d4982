"""The merchant's view of its customers: list, detail, history, edit and erasure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = (
    "c.id, c.code, c.name, c.email, c.phone, c.birthday, c.status, c.tier, c.lifetime_points,"
    " COALESCE(w.balance, 0) AS point_balance, c.created_at, c.erased_at"
)
_FROM = (
    " FROM customers c"
    " LEFT JOIN wallets w ON w.customer_id = c.id AND w.asset = 'points'"
    " WHERE c.org_id = :org"
)
_SORT = {
    "created_at": "c.created_at",
    "name": "lower(c.name)",
    "code": "c.code",
    "points": "COALESCE(w.balance, 0)",
    "lifetime_points": "c.lifetime_points",
}


@dataclass(frozen=True, slots=True)
class AdminCustomerRow:
    id: int
    code: str
    name: str | None
    email: str | None
    phone: str | None
    birthday: date | None
    status: str
    tier: str | None
    lifetime_points: int
    point_balance: int
    created_at: datetime
    erased_at: datetime | None


@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: int
    asset: str
    delta: int
    kind: str
    external_id: str
    reason: str | None
    actor: str | None
    rule_set_version: int | None
    created_at: datetime


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_customers(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    search: str | None,
    phone_digits: str | None,
    status: str | None,
    sort_by: str,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[AdminCustomerRow], int]:
    """A page of the org's customers. Erased customers show only with status ``ERASED``."""
    params: dict[str, Any] = {"org": org_id, "limit": limit, "offset": offset}
    where = ""
    if status == "ERASED":
        where += " AND c.erased_at IS NOT NULL"
    else:
        where += " AND c.erased_at IS NULL"
        if status is not None:
            where += " AND c.status = :status"
            params["status"] = status
    if search:
        where += (
            " AND (lower(c.name) LIKE :q OR lower(c.email) LIKE :q OR c.code = :code"
            " OR (CAST(:digits AS text) IS NOT NULL AND c.phone LIKE :digits))"
        )
        params.update(
            q=_like(search.lower()),
            code=search.upper(),
            digits=_like(phone_digits) if phone_digits else None,
        )
    direction = "DESC" if descending else "ASC"
    order = f"{_SORT[sort_by]} {direction} NULLS LAST, c.id {direction}"
    total = (await conn.execute(sql(f"SELECT count(*){_FROM}{where}"), params)).scalar_one()
    result = await conn.execute(
        sql(f"SELECT {_COLUMNS}{_FROM}{where} ORDER BY {order} LIMIT :limit OFFSET :offset"),
        params,
    )
    return [AdminCustomerRow(*row) for row in result], int(total)


async def stamps_of(conn: AsyncConnection, customer_ids: list[int]) -> dict[int, dict[str, int]]:
    """``{customer_id: {card_id: stamps}}`` for the given customers."""
    result = await conn.execute(
        sql(
            "SELECT customer_id, substr(asset, 8) AS card, balance FROM wallets"
            " WHERE customer_id = ANY(:ids) AND asset LIKE 'stamps:%'"
        ),
        {"ids": customer_ids},
    )
    found: dict[int, dict[str, int]] = {}
    for row in result:
        found.setdefault(row.customer_id, {})[row.card] = int(row.balance)
    return found


async def get_by_code(
    conn: AsyncConnection, *, org_id: uuid.UUID, code: str, lock: bool = False
) -> AdminCustomerRow | None:
    """Erased customers included (their code and books remain)."""
    statement = f"SELECT {_COLUMNS}{_FROM} AND c.code = :code"
    if lock:
        statement += " FOR UPDATE OF c"
    row = (await conn.execute(sql(statement), {"org": org_id, "code": code.upper()})).first()
    return AdminCustomerRow(*row) if row else None


async def history(conn: AsyncConnection, *, customer_id: int, limit: int) -> list[LedgerRow]:
    """The newest ``limit`` ledger entries of the customer, newest first."""
    result = await conn.execute(
        sql(
            "SELECT id, asset, delta, kind, external_id, reason, actor, rule_set_version,"
            " created_at FROM ledger_entries WHERE customer_id = :c ORDER BY id DESC LIMIT :n"
        ),
        {"c": customer_id, "n": limit},
    )
    return [LedgerRow(*row) for row in result]


_EDITABLE = frozenset({"name", "phone", "status"})


async def update_profile(
    conn: AsyncConnection, *, customer_id: int, changes: dict[str, str | None]
) -> None:
    if not changes:
        return
    if not set(changes) <= _EDITABLE:
        raise ValueError(f"not editable: {sorted(set(changes) - _EDITABLE)}")
    assignments = ", ".join(f"{name} = :{name}" for name in sorted(changes))
    await conn.execute(
        sql(f"UPDATE customers SET {assignments} WHERE id = :id"), {**changes, "id": customer_id}
    )


async def erase(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    customer_id: int,
    code_ref: dict[str, str],
    stream_key: str,
    now: datetime,
) -> datetime:
    """Erase personal data; keep the code, wallets and ledger, so the books still add up.

    Stored order bodies and stream keys name the customer by email or phone; they are
    rewritten to the customer code, which still routes a later cancel or refund.
    """
    erased_at = (
        await conn.execute(
            sql(
                "UPDATE customers SET name = NULL, email = NULL, phone = NULL, birthday = NULL,"
                " status = 'ERASED', erased_at = :now WHERE id = :id RETURNING erased_at"
            ),
            {"id": customer_id, "now": now},
        )
    ).scalar_one()
    await conn.execute(
        sql(
            "UPDATE transactions SET"
            " order_body = CASE WHEN order_body ? 'customer'"
            "   THEN jsonb_set(order_body, '{customer}', CAST(:ref AS jsonb))"
            "   ELSE order_body END,"
            " stream_key = CASE WHEN stream_key IS NULL THEN NULL ELSE :key END"
            " WHERE org_id = :org AND customer_id = :id"
            " AND (order_body ? 'customer' OR stream_key IS NOT NULL)"
        ),
        {
            "org": org_id,
            "id": customer_id,
            "ref": orjson.dumps(code_ref).decode(),
            "key": stream_key,
        },
    )
    return erased_at  # type: ignore[no-any-return]
