"""Pieces of the lean order path that the HTTP tests cannot single out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from ingest_api import auth
from ingest_api.auth import KeyCache
from ingest_api.producer import CachedPartitioner
from punchline.apikeys import KEY_PREFIX


def test_cached_partitioner_agrees_with_aiokafka() -> None:
    cached, default = CachedPartitioner(max_keys=50), DefaultPartitioner()
    for i in range(500):
        key = os.urandom(i % 40 + 1) if i % 3 else b"org:code:ABCDEF12"
        partitions = list(range(i % 13 + 1))
        assert cached(key, partitions, partitions) == default(key, partitions, partitions)


class _Row:
    def __init__(self) -> None:
        self.id, self.org_id = uuid.uuid4(), uuid.uuid4()
        self.scopes, self.rate_limits, self.revoked = ["pos"], None, False


class _Engine:
    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        yield None


async def test_key_cache_looks_a_key_up_once_for_concurrent_misses(monkeypatch: Any) -> None:
    row, calls = _Row(), []

    async def find_key_by_hash(conn: Any, digest: str) -> _Row:
        calls.append(digest)
        await asyncio.sleep(0.01)
        return row

    monkeypatch.setattr(auth.orgs, "find_key_by_hash", find_key_by_hash)
    cache = KeyCache(_Engine(), ttl_s=60)  # type: ignore[arg-type]
    found = await asyncio.gather(*(cache.resolve(KEY_PREFIX + "k") for _ in range(20)))
    assert len(calls) == 1
    assert {p.key_id for p in found if p is not None} == {row.id}
    await cache.resolve(KEY_PREFIX + "k")
    assert len(calls) == 1  # cached


async def test_key_cache_lookup_failure_reaches_every_waiter(monkeypatch: Any) -> None:
    async def find_key_by_hash(conn: Any, digest: str) -> _Row:
        await asyncio.sleep(0.01)
        raise ConnectionError("db down")

    monkeypatch.setattr(auth.orgs, "find_key_by_hash", find_key_by_hash)
    cache = KeyCache(_Engine(), ttl_s=60)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(cache.resolve(KEY_PREFIX + "k") for _ in range(5)), return_exceptions=True
    )
    # A key never seen: every waiter gets the same 503, none a 500.
    assert all(isinstance(r, auth.DatabaseUnavailable) for r in results)
    assert all(r.status == 503 for r in results if isinstance(r, auth.DatabaseUnavailable))
    assert not cache._loading  # the next request looks it up again
