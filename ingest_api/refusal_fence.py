"""After a 503, make sure the refused events can never be applied behind the client's back.

A produce that timed out may still reach the log: aiokafka resends batches it
still holds, and a request already on the wire is appended when the broker
wakes up. The edge cannot recall them, so it records their event ids and the
worker refuses them (see :mod:`punchline.db.repositories.refusals`). If a
worker consumed one before the refusal was written, the edge learns that here
and reports that event accepted instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.db.repositories import refusals
from schemas.events import IngestEvent

log = logging.getLogger(__name__)


class RefusalFence:
    def __init__(self, engine: AsyncEngine, *, lock_timeout_s: float) -> None:
        self._engine = engine
        self._lock_timeout_ms = max(1, int(lock_timeout_s * 1000))

    async def refuse(self, events: Sequence[IngestEvent]) -> set[uuid.UUID]:
        """Record the refusals; return the events a worker had consumed already.

        If Postgres cannot take the record, the 503 stands and the log says the
        fence is open for these events: a client retry with the same external_id
        is still safe, since the sink deduplicates.
        """
        keys = [
            refusals.RefusalKey(e.event_id, e.org_id, e.tx_external_id, e.kind.value)
            for e in events
        ]
        try:
            async with self._engine.begin() as conn:
                return await refusals.refuse(conn, keys, lock_timeout_ms=self._lock_timeout_ms)
        except Exception as exc:  # the answer is a 503 either way; say what is at risk
            log.error(
                "refusal not recorded: these 503'd events could still be applied if the"
                " broker delivers them",
                extra={
                    "event_ids": [str(k.event_id) for k in keys][:50],
                    "error": type(exc).__name__,
                },
            )
            return set()
