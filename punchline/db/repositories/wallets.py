"""Synchronous debits: lock one wallet row, then move balance and ledger together.

Every change writes a ledger entry in the same transaction, so a wallet always
equals the sum of its ledger entries.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

POINTS = "points"


def stamp_asset(card_id: str) -> str:
    return f"stamps:{card_id}"


async def balance(
    conn: AsyncConnection, *, customer_id: int, asset: str, lock: bool = False
) -> int:
    """A wallet's balance (0 if it has none); with ``lock``, under a row lock held to the
    end of the transaction."""
    statement = "SELECT balance FROM wallets WHERE customer_id = :c AND asset = :a"
    row = (
        await conn.execute(
            sql(statement + " FOR UPDATE" if lock else statement),
            {"c": customer_id, "a": asset},
        )
    ).first()
    return int(row.balance) if row else 0


async def take(conn: AsyncConnection, *, customer_id: int, asset: str, amount: int) -> int | None:
    """Take ``amount`` off a wallet if it holds that much; the new balance, else ``None``.

    One statement checks and debits, and its row lock lasts to the end of the
    transaction: the shortest hold, for the hottest wallets.
    """
    row = (
        await conn.execute(
            sql(
                "UPDATE wallets SET balance = balance - :n, updated_at = now()"
                " WHERE customer_id = :c AND asset = :a AND balance >= :n RETURNING balance"
            ),
            {"c": customer_id, "a": asset, "n": amount},
        )
    ).first()
    return None if row is None else int(row.balance)


async def debit(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    customer_id: int,
    asset: str,
    amount: int,
    kind: str,
    external_id: str,
    transaction_id: int | None,
    reason: str | None = None,
    actor: str | None = None,
) -> int:
    """Take ``amount`` off a wallet the caller has locked; return the new balance.

    The ``balance >= amount`` guard makes an overdraft impossible even for a caller
    that forgot the lock: it then fails instead of going negative.
    """
    after = await take(conn, customer_id=customer_id, asset=asset, amount=amount)
    if after is None:
        raise RuntimeError("debit without a locked, sufficient wallet")
    await record_debit(
        conn,
        org_id=org_id,
        customer_id=customer_id,
        asset=asset,
        amount=amount,
        kind=kind,
        external_id=external_id,
        transaction_id=transaction_id,
        reason=reason,
        actor=actor,
    )
    return after


async def record_debit(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    customer_id: int,
    asset: str,
    amount: int,
    kind: str,
    external_id: str,
    transaction_id: int | None,
    reason: str | None = None,
    actor: str | None = None,
) -> None:
    """The ledger entry of a debit already taken off the wallet (see :func:`take`)."""
    await conn.execute(
        sql(
            "INSERT INTO ledger_entries (org_id, customer_id, asset, delta, kind, external_id,"
            " transaction_id, reason, actor)"
            " VALUES (:org, :c, :a, :delta, :kind, :ext, :tx, :reason, :actor)"
        ),
        {
            "org": org_id,
            "c": customer_id,
            "a": asset,
            "delta": -amount,
            "kind": kind,
            "ext": external_id,
            "tx": transaction_id,
            "reason": reason,
            "actor": actor,
        },
    )
