"""Benchmark-only SQL for bench/bench_worker.py (asyncpg, no SQLAlchemy).

- the per-order baseline: one transaction per order, one statement per row, the
  way a synchronous per-request loyalty server writes (lock the customer and
  its wallets, insert the transaction, each ledger row, each wallet, …);
- the raw insert limit: the same transaction and ledger rows, multi-row
  ``INSERT … VALUES`` (or COPY), no rules, no reads;
- a statement-level ``pg_sleep`` trigger that makes every batch commit slow, for
  the backpressure run; installed only in the benchmark's throwaway database;
- progress and CPU probes.

Nothing in the product imports this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg

from punchline.db.repositories.batches import (
    CustomerProgress,
    NewCoupon,
    NewLedgerEntry,
    NewOutboxEvent,
    NewTransaction,
    WalletDelta,
    WalletState,
)
from punchline.db.repositories.customers import CustomerRow

# -- baseline: one transaction per order, per-row statements -------------------

LOCK_CUSTOMER = (
    "SELECT id, org_id, code, status, tier, lifetime_points FROM customers"
    " WHERE org_id = $1 AND code = $2 AND erased_at IS NULL FOR UPDATE"
)
LOCK_WALLETS = (
    "SELECT asset, balance, fills FROM wallets WHERE customer_id = $1 ORDER BY asset FOR UPDATE"
)
DAILY = "SELECT points FROM daily_points WHERE customer_id = $1 AND day = $2"
INSERT_TX = (
    "INSERT INTO transactions (org_id, external_id, kind, event_id, customer_id, status,"
    " error_code, points, stamps, coupons, rules_applied, decision, order_body,"
    " rule_set_version, occurred_at, accepted_at, parent_external_id, stream_key)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11::jsonb, $12::jsonb,"
    " $13::jsonb, $14, $15, $16, $17, $18)"
    " ON CONFLICT (org_id, external_id, kind) DO NOTHING RETURNING id"
)
INSERT_LEDGER = (
    "INSERT INTO ledger_entries (org_id, customer_id, asset, delta, kind, external_id,"
    " transaction_id, rule_set_version, reason, actor)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
UPSERT_WALLET = (
    "INSERT INTO wallets (customer_id, asset, org_id, balance, fills) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (customer_id, asset) DO UPDATE SET balance = wallets.balance + EXCLUDED.balance,"
    " fills = wallets.fills + EXCLUDED.fills, updated_at = now()"
)
UPDATE_CUSTOMER = (
    "UPDATE customers SET lifetime_points = lifetime_points + $2, tier = $3 WHERE id = $1"
)
INSERT_COUPON = (
    "INSERT INTO coupons (id, org_id, customer_id, token, source, card_id, fill_number,"
    " transaction_id, reward_name, reward_type, reward_value, expires_at)"
    " VALUES ($1, $2, $3, $4, 'stamp_card', $5, $6, $7, $8, $9, $10,"
    " clock_timestamp() + make_interval(days => $11))"
    " ON CONFLICT (customer_id, card_id, fill_number) DO NOTHING"
)
UPSERT_DAILY = (
    "INSERT INTO daily_points (customer_id, day, points) VALUES ($1, $2, $3)"
    " ON CONFLICT (customer_id, day) DO UPDATE SET points = daily_points.points + EXCLUDED.points"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (org_id, customer_id, event_type, payload) VALUES ($1, $2, $3, $4::jsonb)"
)


async def lock_customer(
    conn: asyncpg.Connection, org_id: uuid.UUID, code: str
) -> CustomerRow | None:
    row = await conn.fetchrow(LOCK_CUSTOMER, org_id, code)
    return CustomerRow(*row) if row else None


async def lock_wallets(conn: asyncpg.Connection, customer_id: int) -> dict[str, WalletState]:
    rows = await conn.fetch(LOCK_WALLETS, customer_id)
    return {r["asset"]: WalletState(r["balance"], r["fills"]) for r in rows}


async def daily_points(conn: asyncpg.Connection, customer_id: int, day: date) -> int:
    value = await conn.fetchval(DAILY, customer_id, day)
    return int(value or 0)


def _tx_args(t: NewTransaction) -> tuple[Any, ...]:
    return (
        t.org_id,
        t.external_id,
        t.kind,
        t.event_id,
        t.customer_id,
        t.status,
        t.error_code,
        t.points,
        t.stamps_json,
        t.coupons_json,
        t.rules_applied_json,
        t.decision_json,
        t.order_json,
        t.rule_set_version,
        t.occurred_at,
        t.accepted_at,
        t.parent_external_id,
        t.stream_key,
    )


async def insert_transaction(conn: asyncpg.Connection, t: NewTransaction) -> int | None:
    value = await conn.fetchval(INSERT_TX, *_tx_args(t))
    return int(value) if value is not None else None


async def insert_ledger_row(conn: asyncpg.Connection, e: NewLedgerEntry, tx_id: int) -> None:
    await conn.execute(
        INSERT_LEDGER,
        e.org_id,
        e.customer_id,
        e.asset,
        e.delta,
        e.kind,
        e.external_id,
        tx_id,
        e.rule_set_version,
        e.reason,
        e.actor,
    )


async def upsert_wallet(conn: asyncpg.Connection, d: WalletDelta) -> None:
    await conn.execute(UPSERT_WALLET, d.customer_id, d.asset, d.org_id, d.delta, d.fills)


async def update_customer(conn: asyncpg.Connection, p: CustomerProgress) -> None:
    await conn.execute(UPDATE_CUSTOMER, p.customer_id, p.lifetime_delta, p.tier)


async def insert_coupon(conn: asyncpg.Connection, c: NewCoupon, tx_id: int) -> None:
    await conn.execute(
        INSERT_COUPON,
        c.id,
        c.org_id,
        c.customer_id,
        c.token,
        c.card_id,
        c.fill_number,
        tx_id,
        c.reward_name,
        c.reward_type,
        c.reward_value,
        c.validity_days,
    )


async def upsert_daily(conn: asyncpg.Connection, customer_id: int, day: date, pts: int) -> None:
    await conn.execute(UPSERT_DAILY, customer_id, day, pts)


async def insert_outbox_row(conn: asyncpg.Connection, o: NewOutboxEvent) -> None:
    await conn.execute(INSERT_OUTBOX, o.org_id, o.customer_id, o.event_type, o.payload_json)


# -- raw insert limit: the worker's rows again, no rules ---------------------------

TX_COLUMNS = (
    "org_id, external_id, kind, event_id, customer_id, status, error_code, points, stamps,"
    " coupons, rules_applied, decision, order_body, rule_set_version, occurred_at,"
    " accepted_at, parent_external_id, stream_key"
)
LEDGER_COLUMNS = (
    "org_id, customer_id, asset, delta, kind, external_id, transaction_id, rule_set_version,"
    " reason, actor"
)
_JSON_TX_COLUMNS = {8, 9, 10, 11, 12}  # 0-based positions of the jsonb columns


async def fetch_written(
    conn: asyncpg.Connection, prefix: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Transaction rows (with id first) and ledger rows (transaction_id as written) of a run."""
    txs = await conn.fetch(
        "SELECT id, org_id, external_id, kind, event_id, customer_id, status, error_code, points,"
        " stamps::text, coupons::text, rules_applied::text, decision::text, order_body::text,"
        " rule_set_version, occurred_at, accepted_at, parent_external_id, stream_key"
        " FROM transactions WHERE external_id LIKE $1 ORDER BY id",
        prefix + "%",
    )
    ledger = await conn.fetch(
        f"SELECT {LEDGER_COLUMNS} FROM ledger_entries WHERE external_id LIKE $1 ORDER BY id",
        prefix + "%",
    )
    return [tuple(r) for r in txs], [tuple(r) for r in ledger]


async def truncate_written(conn: asyncpg.Connection) -> None:
    """Empty the tables the raw insert fills (and the ones that point at them)."""
    await conn.execute("TRUNCATE transactions, ledger_entries, coupons CASCADE")


def _values(rows: int, cols: int, casts: dict[int, str] | None = None) -> str:
    casts = casts or {}
    groups = []
    n = 1
    for _ in range(rows):
        params = []
        for c in range(cols):
            params.append(f"${n}{casts.get(c, '')}")
            n += 1
        groups.append("(" + ", ".join(params) + ")")
    return ", ".join(groups)


async def insert_batch_multirow(
    conn: asyncpg.Connection,
    txs: Sequence[tuple[Any, ...]],
    ledger: Sequence[tuple[Any, ...]],
) -> None:
    """One batch: multi-row INSERT of the transactions (ids returned), then of the ledger."""
    casts = {c: "::jsonb" for c in _JSON_TX_COLUMNS}
    async with conn.transaction():
        rows = await conn.fetch(
            f"INSERT INTO transactions ({TX_COLUMNS}) VALUES {_values(len(txs), 18, casts)}"
            " ON CONFLICT (org_id, external_id, kind) DO NOTHING"
            " RETURNING id, external_id",
            *[v for t in txs for v in t],
        )
        ids = {r["external_id"]: r["id"] for r in rows}
        if ledger:
            flat: list[Any] = []
            for e in ledger:
                flat.extend((*e[:6], ids.get(e[5]), *e[7:]))
            await conn.execute(
                f"INSERT INTO ledger_entries ({LEDGER_COLUMNS})"
                f" VALUES {_values(len(ledger), 10)}"
                " ON CONFLICT (org_id, external_id, kind, asset) DO NOTHING",
                *flat,
            )


async def insert_batch_copy(
    conn: asyncpg.Connection,
    txs: Sequence[tuple[Any, ...]],
    ledger: Sequence[tuple[Any, ...]],
) -> None:
    """One batch through COPY (ids kept from the worker's run, so no RETURNING needed)."""
    async with conn.transaction():
        await conn.copy_records_to_table(
            "transactions",
            records=txs,
            columns=["id", *[c.strip() for c in TX_COLUMNS.split(",")]],
        )
        if ledger:
            await conn.copy_records_to_table(
                "ledger_entries",
                records=ledger,
                columns=[c.strip() for c in LEDGER_COLUMNS.split(",")],
            )


# -- slow Postgres, for the backpressure run ------------------------------------------


async def install_slow_commits(conn: asyncpg.Connection, seconds: float) -> None:
    """Every statement that inserts transactions sleeps ``seconds`` (once per batch)."""
    await conn.execute(
        "CREATE OR REPLACE FUNCTION bench_slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END $$"
    )
    await conn.execute("DROP TRIGGER IF EXISTS bench_slow_commit ON transactions")
    await conn.execute(
        "CREATE TRIGGER bench_slow_commit AFTER INSERT ON transactions"
        " FOR EACH STATEMENT EXECUTE FUNCTION bench_slow_commit()"
    )


async def remove_slow_commits(conn: asyncpg.Connection) -> None:
    await conn.execute("DROP TRIGGER IF EXISTS bench_slow_commit ON transactions")
    await conn.execute("DROP FUNCTION IF EXISTS bench_slow_commit()")


# -- probes -----------------------------------------------------------------------------


async def consumed(conn: asyncpg.Connection, group: str) -> int:
    """Records the group has committed to Postgres (offsets start at 0 on a fresh topic)."""
    value = await conn.fetchval(
        "SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets"
        " WHERE group_id = $1 AND next_offset >= 0",
        group,
    )
    return int(value)


async def status_counts(conn: asyncpg.Connection, prefix: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM transactions WHERE external_id LIKE $1 GROUP BY status",
        prefix + "%",
    )
    return {r["status"]: int(r["n"]) for r in rows}


async def row_count(conn: asyncpg.Connection, table: str, prefix: str) -> int:
    if table not in {"transactions", "ledger_entries"}:
        raise ValueError(table)
    value = await conn.fetchval(
        f"SELECT count(*) FROM {table} WHERE external_id LIKE $1", prefix + "%"
    )
    return int(value)


async def backend_pids(conn: asyncpg.Connection, database: str) -> list[int]:
    """Server processes serving ``database`` (their CPU is the database's share)."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return [int(r["pid"]) for r in rows]


async def server_settings(conn: asyncpg.Connection) -> dict[str, str]:
    names = ["synchronous_commit", "fsync", "shared_buffers", "wal_level", "max_wal_size"]
    return {n: str(await conn.fetchval(f"SHOW {n}")) for n in names}
