"""Pieces of the lean order path that the HTTP tests cannot single out."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ingest_api import auth
from ingest_api.auth import KeyCache
from ingest_api.producer import CachedPartitioner
from punchline.apikeys import KEY_PREFIX
from tests.support.factories import Tenant


def test_cached_partitioner_agrees_with_aiokafka() -> None:
    cached, default = CachedPartitioner(max_keys=50), DefaultPartitioner()
    for i in range(500):
        key = os.urandom(i % 40 + 1) if i % 3 else b"org:code:ABCDEF12"
        partitions = list(range(i % 13 + 1))
        assert cached(key, partitions, partitions) == default(key, partitions, partitions)


@contextlib.contextmanager
def _key_lookups(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every api_keys lookup this engine sends to Postgres while the block runs."""
    calls: list[str] = []

    def before_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM api_keys" in statement:
            calls.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before_execute)
    try:
        yield calls
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before_execute)


async def test_key_cache_looks_a_key_up_once_for_concurrent_misses(
    engine: AsyncEngine, tenant: Tenant
) -> None:
    cache = KeyCache(engine, ttl_s=60)
    with _key_lookups(engine) as calls:
        found = await asyncio.gather(*(cache.resolve(tenant.key) for _ in range(20)))
        assert len(calls) == 1
        assert len({p.key_id for p in found if p is not None}) == 1
        assert all(p is not None and p.org_id == tenant.org_id for p in found)
        await cache.resolve(tenant.key)
        assert len(calls) == 1  # cached


async def test_key_cache_lookup_failure_reaches_every_waiter() -> None:
    # A real engine whose Postgres refuses connections: nothing listens on port 1.
    down = create_async_engine(
        "postgresql+asyncpg://punchline@127.0.0.1:1/none", pool_pre_ping=True
    )
    try:
        cache = KeyCache(down, ttl_s=60)
        results = await asyncio.gather(
            *(cache.resolve(KEY_PREFIX + "k") for _ in range(5)), return_exceptions=True
        )
    finally:
        await down.dispose()
    # A key never seen: every waiter gets the same 503, none a 500.
    assert all(isinstance(r, auth.DatabaseUnavailable) for r in results)
    assert all(r.status == 503 for r in results if isinstance(r, auth.DatabaseUnavailable))
    assert not cache._loading  # the next request looks it up again
