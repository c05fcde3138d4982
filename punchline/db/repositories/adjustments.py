"""Manual points adjustments: one ledger entry (kind ``adjustment``) and the wallet, together.

The ledger's unique (org_id, external_id, kind, asset) is the idempotency key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

KIND = "adjustment"


@dataclass(frozen=True, slots=True)
class AdjustmentRow:
    id: int
    customer_id: int
    delta: int
    reason: str | None
    actor: str | None


async def lock_wallet(
    conn: AsyncConnection, *, org_id: uuid.UUID, customer_id: int, asset: str
) -> int:
    """Create the wallet if missing, lock it to the end of the transaction, return its
    balance. Every adjustment of one wallet therefore runs one after the other."""
    await conn.execute(
        sql(
            "INSERT INTO wallets (customer_id, asset, org_id, balance) VALUES (:c, :a, :org, 0)"
            " ON CONFLICT (customer_id, asset) DO NOTHING"
        ),
        {"c": customer_id, "a": asset, "org": org_id},
    )
    balance = (
        await conn.execute(
            sql("SELECT balance FROM wallets WHERE customer_id = :c AND asset = :a FOR UPDATE"),
            {"c": customer_id, "a": asset},
        )
    ).scalar_one()
    return int(balance)


async def find(
    conn: AsyncConnection, *, org_id: uuid.UUID, external_id: str, asset: str
) -> AdjustmentRow | None:
    row = (
        await conn.execute(
            sql(
                "SELECT id, customer_id, delta, reason, actor FROM ledger_entries"
                " WHERE org_id = :org AND external_id = :ext AND kind = :kind AND asset = :a"
            ),
            {"org": org_id, "ext": external_id, "kind": KIND, "a": asset},
        )
    ).first()
    return AdjustmentRow(*row) if row else None


async def balance_after(
    conn: AsyncConnection, *, customer_id: int, asset: str, entry_id: int
) -> int:
    """The wallet's balance right after one of its entries (entries are made under the
    wallet's lock, so their ids follow the wallet's history)."""
    total = (
        await conn.execute(
            sql(
                "SELECT COALESCE(sum(delta), 0) FROM ledger_entries"
                " WHERE customer_id = :c AND asset = :a AND id <= :id"
            ),
            {"c": customer_id, "a": asset, "id": entry_id},
        )
    ).scalar_one()
    return int(total)


async def apply(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    customer_id: int,
    asset: str,
    delta: int,
    external_id: str,
    reason: str,
    actor: str,
) -> int | None:
    """Write the entry and move the locked wallet; return the new balance, or None when
    another customer's adjustment already holds this external_id."""
    inserted = (
        await conn.execute(
            sql(
                "INSERT INTO ledger_entries (org_id, customer_id, asset, delta, kind,"
                " external_id, reason, actor)"
                " VALUES (:org, :c, :a, :delta, :kind, :ext, :reason, :actor)"
                " ON CONFLICT (org_id, external_id, kind, asset) DO NOTHING RETURNING id"
            ),
            {
                "org": org_id,
                "c": customer_id,
                "a": asset,
                "delta": delta,
                "kind": KIND,
                "ext": external_id,
                "reason": reason,
                "actor": actor,
            },
        )
    ).first()
    if inserted is None:
        return None
    balance = (
        await conn.execute(
            sql(
                "UPDATE wallets SET balance = balance + :delta, updated_at = now()"
                " WHERE customer_id = :c AND asset = :a RETURNING balance"
            ),
            {"c": customer_id, "a": asset, "delta": delta},
        )
    ).scalar_one()
    return int(balance)
