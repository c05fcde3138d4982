"""Set-based SQL for one worker batch: every statement covers the whole batch.

The worker calls these inside ONE transaction, in this order: lock offsets,
read what exists, insert transactions, ledger, wallets, customers, coupons,
save offsets, notify. Arrays travel as native Postgres arrays through
``unnest``, so a batch of 500 orders is a handful of round trips.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

NOTIFY_CHANNEL = "punchline_applied"
TxKey = tuple[uuid.UUID, str, str]


async def lock_offsets(
    conn: AsyncConnection, *, group: str, topic: str, partitions: Sequence[int]
) -> dict[int, int]:
    """Lock the stored next offsets of these partitions; -1 means none stored yet."""
    params = {"g": group, "t": topic, "parts": sorted(set(partitions))}
    await conn.execute(
        sql(
            "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)"
            " SELECT :g, :t, p, -1 FROM unnest(CAST(:parts AS int[])) AS p"
            " ON CONFLICT DO NOTHING"
        ),
        params,
    )
    result = await conn.execute(
        sql(
            "SELECT partition, next_offset FROM consumer_offsets"
            " WHERE group_id = :g AND topic = :t AND partition = ANY(:parts)"
            " ORDER BY partition FOR UPDATE"
        ),
        params,
    )
    return {row.partition: row.next_offset for row in result}


async def read_offsets(conn: AsyncConnection, *, group: str, topic: str) -> dict[int, int]:
    result = await conn.execute(
        sql(
            "SELECT partition, next_offset FROM consumer_offsets"
            " WHERE group_id = :g AND topic = :t AND next_offset >= 0"
        ),
        {"g": group, "t": topic},
    )
    return {row.partition: row.next_offset for row in result}


async def save_offsets(
    conn: AsyncConnection, *, group: str, topic: str, next_offsets: dict[int, int]
) -> None:
    if not next_offsets:
        return
    parts = sorted(next_offsets)
    await conn.execute(
        sql(
            "UPDATE consumer_offsets o SET next_offset = v.next_offset, updated_at = now()"
            " FROM unnest(CAST(:parts AS int[]), CAST(:offs AS bigint[]))"
            "   AS v(partition, next_offset)"
            " WHERE o.group_id = :g AND o.topic = :t AND o.partition = v.partition"
        ),
        {"g": group, "t": topic, "parts": parts, "offs": [next_offsets[p] for p in parts]},
    )


async def existing_transactions(
    conn: AsyncConnection, keys: Sequence[TxKey]
) -> dict[TxKey, uuid.UUID]:
    """Which (org, external_id, kind) already exist, with the event that created them."""
    if not keys:
        return {}
    result = await conn.execute(
        sql(
            "SELECT t.org_id, t.external_id, t.kind, t.event_id"
            " FROM unnest(CAST(:orgs AS uuid[]), CAST(:exts AS text[]), CAST(:kinds AS text[]))"
            "   AS k(org_id, external_id, kind)"
            " JOIN transactions t USING (org_id, external_id, kind)"
        ),
        {"orgs": [k[0] for k in keys], "exts": [k[1] for k in keys], "kinds": [k[2] for k in keys]},
    )
    return {(r.org_id, r.external_id, r.kind): r.event_id for r in result}


@dataclass(frozen=True, slots=True)
class WalletState:
    balance: int
    fills: int


async def load_wallets(
    conn: AsyncConnection, customer_ids: Sequence[int]
) -> dict[int, dict[str, WalletState]]:
    if not customer_ids:
        return {}
    result = await conn.execute(
        sql(
            "SELECT customer_id, asset, balance, fills FROM wallets"
            " WHERE customer_id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": sorted(set(customer_ids))},
    )
    wallets: dict[int, dict[str, WalletState]] = {}
    for row in result:
        wallets.setdefault(row.customer_id, {})[row.asset] = WalletState(row.balance, row.fills)
    return wallets


@dataclass(frozen=True, slots=True)
class NewTransaction:
    org_id: uuid.UUID
    external_id: str
    kind: str
    event_id: uuid.UUID
    customer_id: int | None
    status: str
    error_code: str | None
    points: int
    stamps_json: str
    coupons_json: str
    rules_applied_json: str
    decision_json: str | None
    order_json: str | None
    rule_set_version: int | None
    occurred_at: datetime | None
    accepted_at: datetime
    parent_external_id: str | None = None
    stream_key: str | None = None


async def insert_transactions(
    conn: AsyncConnection, rows: Sequence[NewTransaction]
) -> dict[TxKey, int]:
    """Insert; return the ids of the rows that were new, keyed (org, external_id, kind)."""
    if not rows:
        return {}
    cols = {
        "org_id": ("uuid", [r.org_id for r in rows]),
        "external_id": ("text", [r.external_id for r in rows]),
        "kind": ("text", [r.kind for r in rows]),
        "event_id": ("uuid", [r.event_id for r in rows]),
        "customer_id": ("bigint", [r.customer_id for r in rows]),
        "status": ("text", [r.status for r in rows]),
        "error_code": ("text", [r.error_code for r in rows]),
        "points": ("bigint", [r.points for r in rows]),
        "stamps": ("jsonb", [r.stamps_json for r in rows]),
        "coupons": ("jsonb", [r.coupons_json for r in rows]),
        "rules_applied": ("jsonb", [r.rules_applied_json for r in rows]),
        "decision": ("jsonb", [r.decision_json for r in rows]),
        "order_body": ("jsonb", [r.order_json for r in rows]),
        "rule_set_version": ("int", [r.rule_set_version for r in rows]),
        "occurred_at": ("timestamptz", [r.occurred_at for r in rows]),
        "accepted_at": ("timestamptz", [r.accepted_at for r in rows]),
        "parent_external_id": ("text", [r.parent_external_id for r in rows]),
        "stream_key": ("text", [r.stream_key for r in rows]),
    }
    names = ", ".join(cols)
    arrays = ", ".join(
        f"CAST(:{n} AS {'text' if t == 'jsonb' else t}[])" for n, (t, _) in cols.items()
    )
    select = ", ".join(f"{n}::jsonb" if t == "jsonb" else n for n, (t, _) in cols.items())
    result = await conn.execute(
        sql(
            f"INSERT INTO transactions ({names})"
            f" SELECT {select} FROM unnest({arrays}) AS v({names})"
            " ON CONFLICT (org_id, external_id, kind) DO NOTHING"
            " RETURNING id, org_id, external_id, kind"
        ),
        {n: values for n, (_, values) in cols.items()},
    )
    return {(r.org_id, r.external_id, r.kind): r.id for r in result}


@dataclass(frozen=True, slots=True)
class NewLedgerEntry:
    org_id: uuid.UUID
    customer_id: int
    asset: str
    delta: int
    kind: str
    external_id: str
    transaction_id: int | None
    rule_set_version: int | None
    reason: str | None = None
    actor: str | None = None


async def insert_ledger(
    conn: AsyncConnection,
    rows: Sequence[NewLedgerEntry],
    transaction_ids: Sequence[int | None] | None = None,
) -> int:
    """``transaction_ids``, one per row, override the rows' own ``transaction_id``."""
    if not rows:
        return 0
    result = await conn.execute(
        sql(
            "INSERT INTO ledger_entries (org_id, customer_id, asset, delta, kind, external_id,"
            " transaction_id, rule_set_version, reason, actor)"
            " SELECT * FROM unnest(CAST(:org AS uuid[]), CAST(:cust AS bigint[]),"
            " CAST(:asset AS text[]), CAST(:delta AS bigint[]), CAST(:kind AS text[]),"
            " CAST(:ext AS text[]), CAST(:tx AS bigint[]), CAST(:ver AS int[]),"
            " CAST(:reason AS text[]), CAST(:actor AS text[]))"
            " ON CONFLICT (org_id, external_id, kind, asset) DO NOTHING"
        ),
        {
            "org": [r.org_id for r in rows],
            "cust": [r.customer_id for r in rows],
            "asset": [r.asset for r in rows],
            "delta": [r.delta for r in rows],
            "kind": [r.kind for r in rows],
            "ext": [r.external_id for r in rows],
            "tx": (
                list(transaction_ids)
                if transaction_ids is not None
                else [r.transaction_id for r in rows]
            ),
            "ver": [r.rule_set_version for r in rows],
            "reason": [r.reason for r in rows],
            "actor": [r.actor for r in rows],
        },
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class WalletDelta:
    customer_id: int
    org_id: uuid.UUID
    asset: str
    delta: int
    fills: int = 0


async def apply_wallet_deltas(conn: AsyncConnection, deltas: Sequence[WalletDelta]) -> None:
    """One upsert for the whole batch; the caller aggregates per wallet first."""
    if not deltas:
        return
    ordered = sorted(deltas, key=lambda d: (d.customer_id, d.asset))  # stable lock order
    await conn.execute(
        sql(
            "INSERT INTO wallets (customer_id, asset, org_id, balance, fills)"
            " SELECT * FROM unnest(CAST(:cust AS bigint[]), CAST(:asset AS text[]),"
            " CAST(:org AS uuid[]), CAST(:delta AS bigint[]), CAST(:fills AS int[]))"
            " ON CONFLICT (customer_id, asset) DO UPDATE SET"
            " balance = wallets.balance + EXCLUDED.balance,"
            " fills = wallets.fills + EXCLUDED.fills, updated_at = now()"
        ),
        {
            "cust": [d.customer_id for d in ordered],
            "asset": [d.asset for d in ordered],
            "org": [d.org_id for d in ordered],
            "delta": [d.delta for d in ordered],
            "fills": [d.fills for d in ordered],
        },
    )


@dataclass(frozen=True, slots=True)
class CustomerProgress:
    customer_id: int
    lifetime_delta: int
    tier: str | None


async def update_customers(conn: AsyncConnection, rows: Sequence[CustomerProgress]) -> None:
    if not rows:
        return
    ordered = sorted(rows, key=lambda r: r.customer_id)
    await conn.execute(
        sql(
            "UPDATE customers c SET lifetime_points = c.lifetime_points + v.delta, tier = v.tier"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:deltas AS bigint[]),"
            " CAST(:tiers AS text[])) AS v(id, delta, tier) WHERE c.id = v.id"
        ),
        {
            "ids": [r.customer_id for r in ordered],
            "deltas": [r.lifetime_delta for r in ordered],
            "tiers": [r.tier for r in ordered],
        },
    )


@dataclass(frozen=True, slots=True)
class NewCoupon:
    id: uuid.UUID
    org_id: uuid.UUID
    customer_id: int
    token: str
    card_id: str
    fill_number: int
    transaction_id: int
    reward_name: str
    reward_type: str
    reward_value: int
    validity_days: int


async def insert_stamp_coupons(conn: AsyncConnection, rows: Sequence[NewCoupon]) -> None:
    if not rows:
        return
    await conn.execute(
        sql(
            "INSERT INTO coupons (id, org_id, customer_id, token, source, card_id, fill_number,"
            " transaction_id, reward_name, reward_type, reward_value, expires_at)"
            " SELECT id, org_id, customer_id, token, 'stamp_card', card_id, fill_number,"
            " transaction_id, reward_name, reward_type, reward_value,"
            " clock_timestamp() + make_interval(days => validity_days)"
            " FROM unnest(CAST(:id AS uuid[]), CAST(:org AS uuid[]), CAST(:cust AS bigint[]),"
            " CAST(:token AS text[]), CAST(:card AS text[]), CAST(:fill AS int[]),"
            " CAST(:tx AS bigint[]), CAST(:rname AS text[]), CAST(:rtype AS text[]),"
            " CAST(:rvalue AS bigint[]), CAST(:days AS int[]))"
            " AS v(id, org_id, customer_id, token, card_id, fill_number, transaction_id,"
            " reward_name, reward_type, reward_value, validity_days)"
            " ON CONFLICT (customer_id, card_id, fill_number) DO NOTHING"
        ),
        {
            "id": [r.id for r in rows],
            "org": [r.org_id for r in rows],
            "cust": [r.customer_id for r in rows],
            "token": [r.token for r in rows],
            "card": [r.card_id for r in rows],
            "fill": [r.fill_number for r in rows],
            "tx": [r.transaction_id for r in rows],
            "rname": [r.reward_name for r in rows],
            "rtype": [r.reward_type for r in rows],
            "rvalue": [r.reward_value for r in rows],
            "days": [r.validity_days for r in rows],
        },
    )


async def count_duplicates(conn: AsyncConnection, counts: dict[TxKey, int]) -> None:
    if not counts:
        return
    keys = sorted(counts, key=lambda k: (str(k[0]), k[1], k[2]))
    await conn.execute(
        sql(
            "UPDATE transactions t SET duplicate_count = t.duplicate_count + v.n"
            " FROM unnest(CAST(:orgs AS uuid[]), CAST(:exts AS text[]), CAST(:kinds AS text[]),"
            " CAST(:ns AS int[])) AS v(org_id, external_id, kind, n)"
            " WHERE t.org_id = v.org_id AND t.external_id = v.external_id AND t.kind = v.kind"
        ),
        {
            "orgs": [k[0] for k in keys],
            "exts": [k[1] for k in keys],
            "kinds": [k[2] for k in keys],
            "ns": [counts[k] for k in keys],
        },
    )


async def notify_applied(conn: AsyncConnection) -> None:
    """Wake every API process waiting on a result (Prefer: wait); delivered at commit."""
    await conn.execute(sql(f"NOTIFY {NOTIFY_CHANNEL}"))


async def load_daily_points(
    conn: AsyncConnection, keys: Sequence[tuple[int, date]]
) -> dict[tuple[int, date], int]:
    """Points already earned per (customer, local day), for the per-day cap."""
    if not keys:
        return {}
    unique = sorted(set(keys))
    result = await conn.execute(
        sql(
            # One primary-key probe per key (LATERAL … LIMIT 1 keeps the planner from a hash
            # join over the whole table, which grows by a row per customer and day).
            "SELECT k.customer_id, k.day, d.points"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:days AS date[])) AS k(customer_id, day)"
            " JOIN LATERAL (SELECT points FROM daily_points"
            "   WHERE customer_id = k.customer_id AND day = k.day LIMIT 1) AS d ON true"
        ),
        {"ids": [k[0] for k in unique], "days": [k[1] for k in unique]},
    )
    return {(row.customer_id, row.day): row.points for row in result}


async def add_daily_points(conn: AsyncConnection, deltas: dict[tuple[int, date], int]) -> None:
    if not deltas:
        return
    keys = sorted(deltas)
    await conn.execute(
        sql(
            "INSERT INTO daily_points (customer_id, day, points)"
            " SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:days AS date[]),"
            " CAST(:pts AS bigint[]))"
            " ON CONFLICT (customer_id, day) DO UPDATE"
            " SET points = daily_points.points + EXCLUDED.points"
        ),
        {
            "ids": [k[0] for k in keys],
            "days": [k[1] for k in keys],
            "pts": [deltas[k] for k in keys],
        },
    )


@dataclass(frozen=True, slots=True)
class StoredOrder:
    org_id: uuid.UUID
    external_id: str
    customer_id: int
    status: str
    decision: dict[str, Any]
    order_body: dict[str, Any]
    reversed: dict[str, Any] | None
    rule_set_version: int


async def load_orders(
    conn: AsyncConnection, keys: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], StoredOrder]:
    """Applied orders that reversals in this batch refer to."""
    if not keys:
        return {}
    unique = sorted(set(keys), key=lambda k: (str(k[0]), k[1]))
    result = await conn.execute(
        sql(
            "SELECT t.org_id, t.external_id, t.customer_id, t.status, t.decision, t.order_body,"
            " t.reversed, t.rule_set_version FROM transactions t"
            " JOIN unnest(CAST(:orgs AS uuid[]), CAST(:exts AS text[])) AS k(org_id, external_id)"
            " USING (org_id, external_id)"
            " WHERE t.kind = 'order' AND t.decision IS NOT NULL"
        ),
        {"orgs": [k[0] for k in unique], "exts": [k[1] for k in unique]},
    )
    return {(r.org_id, r.external_id): StoredOrder(*r) for r in result}


async def load_parked(
    conn: AsyncConnection, keys: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], list[dict[str, Any]]]:
    """Reversals waiting for these orders, oldest first (orphaned ones still apply)."""
    if not keys:
        return {}
    unique = sorted(set(keys), key=lambda k: (str(k[0]), k[1]))
    result = await conn.execute(
        sql(
            "SELECT p.org_id, p.order_external_id, p.payload FROM parked_events p"
            " JOIN unnest(CAST(:orgs AS uuid[]), CAST(:exts AS text[])) AS k(org_id, ext)"
            " ON p.org_id = k.org_id AND p.order_external_id = k.ext"
            " WHERE p.status IN ('parked', 'orphaned') ORDER BY p.id"
        ),
        {"orgs": [k[0] for k in unique], "exts": [k[1] for k in unique]},
    )
    parked: dict[tuple[uuid.UUID, str], list[dict[str, Any]]] = {}
    for row in result:
        parked.setdefault((row.org_id, row.order_external_id), []).append(row.payload)
    return parked


async def park_events(
    conn: AsyncConnection, rows: Sequence[tuple[uuid.UUID, str, uuid.UUID, str, str]]
) -> None:
    """rows: (org_id, order external_id, event_id, kind, payload JSON)."""
    if not rows:
        return
    await conn.execute(
        sql(
            "INSERT INTO parked_events (org_id, order_external_id, event_id, kind, payload)"
            " SELECT o, e, i, k, CAST(p AS jsonb) FROM unnest(CAST(:o AS uuid[]),"
            " CAST(:e AS text[]), CAST(:i AS uuid[]), CAST(:k AS text[]), CAST(:p AS text[]))"
            " AS v(o, e, i, k, p) ON CONFLICT (org_id, event_id) DO NOTHING"
        ),
        {
            "o": [r[0] for r in rows],
            "e": [r[1] for r in rows],
            "i": [r[2] for r in rows],
            "k": [r[3] for r in rows],
            "p": [r[4] for r in rows],
        },
    )


async def resolve_parked(
    conn: AsyncConnection, rows: Sequence[NewTransaction], event_ids: Sequence[uuid.UUID]
) -> dict[TxKey, int]:
    """A parked reversal met its order: its transaction row takes the outcome.

    Returns the ids of those rows, so their ledger entries link to them.
    """
    ids: dict[TxKey, int] = {}
    for row in rows:
        updated = await conn.execute(
            sql(
                "UPDATE transactions SET status = :status, error_code = :err, points = :points,"
                " stamps = CAST(:stamps AS jsonb), decision = CAST(:decision AS jsonb),"
                " customer_id = :cust, rule_set_version = :ver, applied_at = clock_timestamp()"
                " WHERE org_id = :org AND external_id = :ext AND kind = :kind RETURNING id"
            ),
            {
                "status": row.status,
                "err": row.error_code,
                "points": row.points,
                "stamps": row.stamps_json,
                "decision": row.decision_json,
                "cust": row.customer_id,
                "ver": row.rule_set_version,
                "org": row.org_id,
                "ext": row.external_id,
                "kind": row.kind,
            },
        )
        ids[(row.org_id, row.external_id, row.kind)] = int(updated.scalar_one())
    if event_ids:
        await conn.execute(
            sql(
                "UPDATE parked_events SET status = 'applied', resolved_at = clock_timestamp()"
                " WHERE event_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": list(event_ids)},
        )
    return ids


async def mark_orphans(conn: AsyncConnection, *, older_than_s: float) -> int:
    """Report reversals whose order never came; they still apply if it arrives later."""
    result = await conn.execute(
        sql(
            "WITH o AS (UPDATE parked_events"
            "  SET status = 'orphaned', resolved_at = clock_timestamp() WHERE status = 'parked'"
            "  AND parked_at < clock_timestamp() - make_interval(secs => :s)"
            "  RETURNING org_id, event_id)"
            " UPDATE transactions t SET status = 'orphaned' FROM o"
            " WHERE t.org_id = o.org_id AND t.event_id = o.event_id AND t.status = 'parked'"
        ),
        {"s": older_than_s},
    )
    return int(result.rowcount or 0)


async def update_reversed_orders(
    conn: AsyncConnection, updates: dict[tuple[uuid.UUID, str], tuple[str, str]]
) -> None:
    if not updates:
        return
    keys = sorted(updates, key=lambda k: (str(k[0]), k[1]))
    await conn.execute(
        sql(
            "UPDATE transactions t SET status = v.status, reversed = CAST(v.rev AS jsonb)"
            " FROM unnest(CAST(:orgs AS uuid[]), CAST(:exts AS text[]), CAST(:sts AS text[]),"
            " CAST(:revs AS text[])) AS v(org_id, external_id, status, rev)"
            " WHERE t.org_id = v.org_id AND t.external_id = v.external_id AND t.kind = 'order'"
        ),
        {
            "orgs": [k[0] for k in keys],
            "exts": [k[1] for k in keys],
            "sts": [updates[k][0] for k in keys],
            "revs": [updates[k][1] for k in keys],
        },
    )


async def load_coupon_statuses(
    conn: AsyncConnection, customer_ids: Sequence[int]
) -> dict[tuple[int, str, int], str]:
    if not customer_ids:
        return {}
    result = await conn.execute(
        sql(
            "SELECT customer_id, card_id, fill_number, status FROM coupons"
            " WHERE customer_id = ANY(CAST(:ids AS bigint[])) AND card_id IS NOT NULL"
        ),
        {"ids": sorted(set(customer_ids))},
    )
    return {(r.customer_id, r.card_id, r.fill_number): r.status for r in result}


async def void_coupons(conn: AsyncConnection, voids: Sequence[tuple[int, str, int]]) -> None:
    if not voids:
        return
    await conn.execute(
        sql(
            "UPDATE coupons c SET status = 'voided' FROM unnest(CAST(:c AS bigint[]),"
            " CAST(:k AS text[]), CAST(:f AS int[])) AS v(customer_id, card_id, fill_number)"
            " WHERE c.customer_id = v.customer_id AND c.card_id = v.card_id"
            " AND c.fill_number = v.fill_number AND c.status = 'issued'"
        ),
        {"c": [v[0] for v in voids], "k": [v[1] for v in voids], "f": [v[2] for v in voids]},
    )


async def load_progress(
    conn: AsyncConnection, customer_ids: Sequence[int]
) -> dict[int, tuple[int, str | None]]:
    if not customer_ids:
        return {}
    result = await conn.execute(
        sql(
            "SELECT id, lifetime_points, tier FROM customers WHERE id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": sorted(set(customer_ids))},
    )
    return {r.id: (r.lifetime_points, r.tier) for r in result}


@dataclass(frozen=True, slots=True)
class NewOutboxEvent:
    org_id: uuid.UUID
    customer_id: int | None
    event_type: str
    payload_json: str


async def insert_outbox(conn: AsyncConnection, rows: Sequence[NewOutboxEvent]) -> None:
    """Domain events of the batch, in stream order, in the batch transaction."""
    if not rows:
        return
    await conn.execute(
        sql(
            "INSERT INTO outbox (org_id, customer_id, event_type, payload)"
            " SELECT o, c, t, CAST(p AS jsonb) FROM unnest(CAST(:o AS uuid[]),"
            " CAST(:c AS bigint[]), CAST(:t AS text[]), CAST(:p AS text[]))"
            " WITH ORDINALITY AS v(o, c, t, p, n) ORDER BY n"
        ),
        {
            "o": [r.org_id for r in rows],
            "c": [r.customer_id for r in rows],
            "t": [r.event_type for r in rows],
            "p": [r.payload_json for r in rows],
        },
    )


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    name: str
    category: str | None


async def load_catalogue(
    conn: AsyncConnection, pairs: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], CatalogueEntry]:
    """Active catalogue products for (org, sku) pairs, to name lines that carry only a sku."""
    if not pairs:
        return {}
    unique = sorted(set(pairs), key=lambda p: (str(p[0]), p[1]))
    result = await conn.execute(
        sql(
            "SELECT p.org_id, p.sku, p.name, p.category FROM products p"
            " JOIN unnest(CAST(:orgs AS uuid[]), CAST(:skus AS text[])) AS k(org_id, sku)"
            " USING (org_id, sku) WHERE p.active"
        ),
        {"orgs": [p[0] for p in unique], "skus": [p[1] for p in unique]},
    )
    return {(r.org_id, r.sku): CatalogueEntry(r.name, r.category) for r in result}
