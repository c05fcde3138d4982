"""Read-only, set-based checks of the books: one query per invariant, each returning
the offending rows (at most ``limit``), optionally for one org.

A ledger entry belongs to its transaction through ``transaction_id``; a reversal that
was parked before its order wrote its entries without one, so an entry with no
``transaction_id`` also counts when it shares the transaction's org, external id and
customer, and its kind is one the transaction's kind writes.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

Row = dict[str, Any]

_WALLET_MISMATCHES = """
WITH l AS (
    SELECT org_id, customer_id, asset, sum(delta) AS total
    FROM ledger_entries WHERE (CAST(:org AS uuid) IS NULL OR org_id = :org)
    GROUP BY org_id, customer_id, asset
), w AS (
    SELECT org_id, customer_id, asset, balance
    FROM wallets WHERE (CAST(:org AS uuid) IS NULL OR org_id = :org)
)
SELECT COALESCE(w.org_id, l.org_id) AS org_id,
       COALESCE(w.customer_id, l.customer_id) AS customer_id,
       COALESCE(w.asset, l.asset) AS asset,
       w.balance AS wallet_balance,
       COALESCE(l.total, 0) AS ledger_sum
FROM w FULL JOIN l USING (customer_id, asset)
WHERE COALESCE(w.balance, 0) <> COALESCE(l.total, 0)
ORDER BY 1, 2, 3
LIMIT :limit
"""

_NEGATIVE_BALANCES = """
SELECT w.org_id, w.customer_id, w.asset, w.balance, o.negative_balance_policy AS policy
FROM wallets w JOIN orgs o ON o.id = w.org_id
WHERE w.balance < 0 AND o.negative_balance_policy <> 'allow_negative'
  AND (CAST(:org AS uuid) IS NULL OR w.org_id = :org)
ORDER BY 1, 2, 3
LIMIT :limit
"""

# The assets a transaction moved: points when points <> 0, one stamps:<card> per card
# whose stamp count is not zero.
_MISSING_LEDGER = """
WITH moved AS (
    SELECT t.id, t.org_id, t.external_id, t.kind, t.status, t.customer_id,
           'points' AS asset, t.points AS amount
    FROM transactions t
    WHERE t.status IN ('applied', 'reversed', 'partially_reversed') AND t.points <> 0
      AND (CAST(:org AS uuid) IS NULL OR t.org_id = :org)
    UNION ALL
    SELECT t.id, t.org_id, t.external_id, t.kind, t.status, t.customer_id,
           'stamps:' || s.key, (s.value #>> '{}')::numeric
    FROM transactions t,
         jsonb_each(CASE jsonb_typeof(t.stamps) WHEN 'object' THEN t.stamps ELSE '{}' END) s
    WHERE t.status IN ('applied', 'reversed', 'partially_reversed')
      AND (s.value #>> '{}')::numeric <> 0
      AND (CAST(:org AS uuid) IS NULL OR t.org_id = :org)
)
SELECT m.org_id, m.id AS transaction_id, m.external_id, m.kind, m.status, m.customer_id,
       m.asset, m.amount
FROM moved m
WHERE NOT EXISTS (
    SELECT 1 FROM ledger_entries le
    WHERE le.asset = m.asset AND (
        le.transaction_id = m.id
        OR (le.transaction_id IS NULL AND le.org_id = m.org_id
            AND le.external_id = m.external_id AND le.customer_id = m.customer_id
            AND (le.kind = m.kind OR le.kind = m.kind || '_card_fill'))
    )
)
ORDER BY 1, 2, 7
LIMIT :limit
"""

# A stamp-card coupon comes from the order or earn that filled the card; a reward
# coupon from its redemption. Either way the source transaction is applied (or later
# reversed), belongs to the coupon's org and customer, and lists the coupon's id.
_ORPHAN_COUPONS = """
SELECT c.org_id, c.id AS coupon_id, c.customer_id, c.source, c.transaction_id,
       CASE
         WHEN c.source NOT IN ('stamp_card', 'reward') THEN 'unknown source'
         WHEN c.transaction_id IS NULL THEN 'no source transaction'
         WHEN t.id IS NULL THEN 'source transaction missing'
         WHEN t.org_id <> c.org_id OR t.customer_id IS DISTINCT FROM c.customer_id
           THEN 'source transaction of another customer'
         WHEN c.source = 'stamp_card' AND t.kind NOT IN ('order', 'earn')
           THEN 'stamp-card coupon from a ' || t.kind
         WHEN c.source = 'reward' AND t.kind <> 'redemption'
           THEN 'reward coupon from a ' || t.kind
         WHEN t.status NOT IN ('applied', 'reversed', 'partially_reversed')
           THEN 'source transaction is ' || t.status
         ELSE 'source transaction does not list the coupon'
       END AS problem
FROM coupons c LEFT JOIN transactions t ON t.id = c.transaction_id
WHERE (CAST(:org AS uuid) IS NULL OR c.org_id = :org)
  AND (
    c.source NOT IN ('stamp_card', 'reward')
    OR t.id IS NULL
    OR t.org_id <> c.org_id
    OR t.customer_id IS DISTINCT FROM c.customer_id
    OR (c.source = 'stamp_card' AND t.kind NOT IN ('order', 'earn'))
    OR (c.source = 'reward' AND t.kind <> 'redemption')
    OR t.status NOT IN ('applied', 'reversed', 'partially_reversed')
    OR NOT t.coupons @> jsonb_build_array(jsonb_build_object('id', c.id::text))
  )
ORDER BY 1, 2
LIMIT :limit
"""

_UNPUBLISHED_OUTBOX = """
SELECT org_id, id AS outbox_id, event_type, created_at
FROM outbox
WHERE published_at IS NULL
  AND created_at < clock_timestamp() - make_interval(secs => :grace)
  AND (CAST(:org AS uuid) IS NULL OR org_id = :org)
ORDER BY id
LIMIT :limit
"""


async def _rows(conn: AsyncConnection, statement: str, params: dict[str, Any]) -> list[Row]:
    result = await conn.execute(sql(statement), params)
    return [dict(r._mapping) for r in result]


async def wallet_mismatches(
    conn: AsyncConnection, *, org_id: uuid.UUID | None, limit: int
) -> list[Row]:
    """Wallets (or ledger streams without a wallet) whose balance is not the ledger sum."""
    return await _rows(conn, _WALLET_MISMATCHES, {"org": org_id, "limit": limit})


async def negative_balances(
    conn: AsyncConnection, *, org_id: uuid.UUID | None, limit: int
) -> list[Row]:
    """Negative wallets of orgs whose policy does not allow them."""
    return await _rows(conn, _NEGATIVE_BALANCES, {"org": org_id, "limit": limit})


async def transactions_without_ledger(
    conn: AsyncConnection, *, org_id: uuid.UUID | None, limit: int
) -> list[Row]:
    """Applied movements (transaction, asset) that have no ledger entry."""
    return await _rows(conn, _MISSING_LEDGER, {"org": org_id, "limit": limit})


async def coupons_without_source(
    conn: AsyncConnection, *, org_id: uuid.UUID | None, limit: int
) -> list[Row]:
    """Coupons whose issuing transaction is missing or does not match them."""
    return await _rows(conn, _ORPHAN_COUPONS, {"org": org_id, "limit": limit})


async def unpublished_outbox(
    conn: AsyncConnection, *, org_id: uuid.UUID | None, grace_s: float, limit: int
) -> list[Row]:
    """Outbox rows older than ``grace_s`` (by the database's clock) still unpublished."""
    return await _rows(
        conn, _UNPUBLISHED_OUTBOX, {"org": org_id, "grace": float(grace_s), "limit": limit}
    )
