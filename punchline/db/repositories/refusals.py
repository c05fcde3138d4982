"""The refusal fence: events the edge answered 503 for, and the worker's check of them.

The edge writes here only when a produce failed after the event was handed to
the producer; the worker reads here once per batch. One advisory lock orders
the two: the worker holds it *shared* for its whole batch transaction, and the
edge takes it *exclusively* to record a refusal. So either the worker's batch
committed first, and the edge sees the event as consumed (and answers 202 after
all), or the refusal committed first, and the worker's check sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

# pg_advisory_xact_lock key: "punchline refusal fence", a fixed bigint.
FENCE_LOCK = 0x7075_6E63_6866_6E63


@dataclass(frozen=True, slots=True)
class RefusalKey:
    event_id: uuid.UUID
    org_id: uuid.UUID
    external_id: str
    kind: str


async def hold_fence_shared(conn: AsyncConnection) -> None:
    """Worker side: blocks only while an edge is recording a refusal (rare, short)."""
    await conn.execute(sql("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": FENCE_LOCK})


async def refused_among(conn: AsyncConnection, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Worker side, after :func:`hold_fence_shared`: which of these events were refused."""
    if not event_ids:
        return set()
    result = await conn.execute(
        sql("SELECT event_id FROM refused_events WHERE event_id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": list(event_ids)},
    )
    return {row.event_id for row in result}


async def refuse(
    conn: AsyncConnection, keys: Sequence[RefusalKey], *, lock_timeout_ms: int
) -> set[uuid.UUID]:
    """Edge side: record refusals, except for events a worker has already consumed.

    Returns the event ids already consumed (a transaction or a parked reversal
    carries them): those are not refused, and the caller reports them accepted.
    """
    if not keys:
        return set()
    await conn.execute(sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
    await conn.execute(sql("SELECT pg_advisory_xact_lock(:k)"), {"k": FENCE_LOCK})
    params = {
        "ids": [k.event_id for k in keys],
        "orgs": [k.org_id for k in keys],
        "exts": [k.external_id for k in keys],
        "kinds": [k.kind for k in keys],
    }
    consumed = await conn.execute(
        sql(
            "SELECT t.event_id FROM transactions t"
            " JOIN unnest(CAST(:orgs AS uuid[]), CAST(:exts AS text[]), CAST(:kinds AS text[]),"
            "   CAST(:ids AS uuid[])) AS k(org_id, external_id, kind, event_id)"
            "   USING (org_id, external_id, kind, event_id)"
            " UNION"
            " SELECT p.event_id FROM parked_events p"
            " JOIN unnest(CAST(:orgs AS uuid[]), CAST(:ids AS uuid[])) AS k(org_id, event_id)"
            "   USING (org_id, event_id)"
        ),
        params,
    )
    done = {row.event_id for row in consumed}
    await conn.execute(
        sql(
            "INSERT INTO refused_events (event_id, org_id, external_id, kind)"
            " SELECT event_id, org_id, external_id, kind"
            " FROM unnest(CAST(:ids AS uuid[]), CAST(:orgs AS uuid[]), CAST(:exts AS text[]),"
            "   CAST(:kinds AS text[])) AS k(event_id, org_id, external_id, kind)"
            " WHERE NOT (event_id = ANY(CAST(:done AS uuid[])))"
            " ON CONFLICT (event_id) DO NOTHING"
        ),
        {**params, "done": list(done)},
    )
    return done


async def prune(conn: AsyncConnection, *, older_than_s: float) -> int:
    """Forget refusals old enough that no resend of them can still be in flight."""
    result = await conn.execute(
        sql(
            "DELETE FROM refused_events"
            " WHERE refused_at < clock_timestamp() - make_interval(secs => :s)"
        ),
        {"s": older_than_s},
    )
    return int(result.rowcount or 0)
