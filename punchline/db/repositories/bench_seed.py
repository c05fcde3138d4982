"""Set-based seeding for benchmarks: many customers and wallets in a few statements.

Used by bench/bench_worker.py (100k customers) only; the product paths insert
customers one by one through :mod:`punchline.db.repositories.customers`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql


async def insert_customers(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    codes: Sequence[str],
    lifetime_points: Sequence[int],
    tiers: Sequence[str | None],
) -> dict[str, int]:
    """Insert customers (consent given, ACTIVE) in one statement; returns code → id."""
    if not codes:
        return {}
    result = await conn.execute(
        sql(
            "INSERT INTO customers (org_id, code, lifetime_points, tier, consent_terms_at)"
            " SELECT :org, code, lp, tier, now() FROM unnest(CAST(:codes AS text[]),"
            " CAST(:lps AS bigint[]), CAST(:tiers AS text[])) AS v(code, lp, tier)"
            " RETURNING id, code"
        ),
        {"org": org_id, "codes": list(codes), "lps": list(lifetime_points), "tiers": list(tiers)},
    )
    return {row.code: row.id for row in result}


async def insert_wallets(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    customer_ids: Sequence[int],
    asset: str,
    balances: Sequence[int],
    fills: Sequence[int],
) -> None:
    """One wallet per customer for ``asset``, in one statement."""
    if not customer_ids:
        return
    await conn.execute(
        sql(
            "INSERT INTO wallets (customer_id, asset, org_id, balance, fills)"
            " SELECT c, :asset, :org, b, f FROM unnest(CAST(:ids AS bigint[]),"
            " CAST(:bals AS bigint[]), CAST(:fills AS int[])) AS v(c, b, f)"
        ),
        {
            "org": org_id,
            "asset": asset,
            "ids": list(customer_ids),
            "bals": list(balances),
            "fills": list(fills),
        },
    )


async def analyze(conn: AsyncConnection, tables: Sequence[str]) -> None:
    """Fresh planner statistics after a bulk load (autovacuum may not have run yet)."""
    for table in tables:
        if not table.replace("_", "").isalnum():
            raise ValueError(f"not a table name: {table!r}")
        await conn.execute(sql(f"ANALYZE {table}"))
