"""Read-only checks of what the worker wrote."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def count_transactions(
    engine: AsyncEngine, org_id: uuid.UUID, status: str | None = None
) -> int:
    sql = "SELECT count(*) FROM transactions WHERE org_id = :org"
    if status:
        sql += " AND status = :status"
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), {"org": org_id, "status": status})).scalar_one())


async def ledger_mismatches(engine: AsyncEngine, org_id: uuid.UUID) -> list[tuple[object, ...]]:
    """Wallets whose balance differs from the sum of their ledger entries."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT w.customer_id, w.asset, w.balance, COALESCE(l.total, 0)"
                " FROM wallets w LEFT JOIN ("
                "   SELECT customer_id, asset, sum(delta) AS total FROM ledger_entries"
                "   WHERE org_id = :org GROUP BY customer_id, asset) l"
                " USING (customer_id, asset)"
                " WHERE w.org_id = :org AND w.balance <> COALESCE(l.total, 0)"
            ),
            {"org": org_id},
        )
        return [tuple(r) for r in rows]


async def duplicate_ledger_keys(engine: AsyncEngine, org_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM (SELECT external_id, kind, asset FROM ledger_entries"
                        " WHERE org_id = :org GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
                    ),
                    {"org": org_id},
                )
            ).scalar_one()
        )


async def points_total(engine: AsyncEngine, org_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT COALESCE(sum(points), 0) FROM transactions WHERE org_id = :org"),
                    {"org": org_id},
                )
            ).scalar_one()
        )
