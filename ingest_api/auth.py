"""API key authentication with a short-lived in-process cache.

A key is looked up by its SHA-256 hash; hits and misses are cached for
``api_key_cache_ttl_s`` seconds, so a revoked key stops working within that
time on every API process, and the hot path of an accepted order needs no
database round trip. Last-used times are flushed in the background.

When Postgres cannot answer a lookup, a key this process knew within the last
``api_key_stale_s`` seconds keeps its last known answer (stale-if-error), so
orders keep flowing to the broker through a database outage; a key never seen
gets a 503 ``database_unavailable``, never a 500.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.errors import INVALID_KEY, ApiError
from punchline.apikeys import KEY_PREFIX, hash_key
from punchline.db.repositories import orgs

_MAX_CACHE = 50_000


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    org_id: uuid.UUID
    scopes: frozenset[str]
    rate_limits: Mapping[str, str] | None = None


class DatabaseUnavailable(ApiError):
    def __init__(self) -> None:
        super().__init__(503, "database_unavailable", "Keys cannot be checked; retry shortly.")
        self.headers = {"Retry-After": "1"}


class KeyCache:
    def __init__(self, engine: AsyncEngine, ttl_s: float, *, stale_s: float = 300.0) -> None:
        self._engine = engine
        self._ttl = ttl_s
        self._stale = stale_s
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._used: set[uuid.UUID] = set()
        self._loading: dict[str, asyncio.Future[Principal | None]] = {}

    async def resolve(self, key: str) -> Principal | None:
        digest = hash_key(key)
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            principal = hit[1]
        else:
            # One lookup per key at a time: when an entry expires under load, every
            # request holding that key waits for the same query instead of each
            # taking a pool connection for its own.
            loading = self._loading.get(digest)
            if loading is None:
                loading = asyncio.ensure_future(self._load(digest))
                self._loading[digest] = loading
                loading.add_done_callback(functools.partial(self._loaded, digest))
            principal = await asyncio.shield(loading)
        if principal is not None:
            self._used.add(principal.key_id)
        return principal

    def _loaded(self, digest: str, loading: asyncio.Future[Principal | None]) -> None:
        self._loading.pop(digest, None)
        if not loading.cancelled():
            loading.exception()  # retrieved: the waiters, if any, raise it

    async def _load(self, digest: str) -> Principal | None:
        now = time.monotonic()
        try:
            async with self._engine.connect() as conn:
                row = await orgs.find_key_by_hash(conn, digest)
        except Exception as exc:  # whatever the driver raised, Postgres did not answer
            known = self._entries.get(digest)
            if known is not None and known[0] + self._stale > now:
                return known[1]  # stale-if-error: the last answer Postgres gave
            raise DatabaseUnavailable() from exc
        principal = (
            None
            if row is None or row.revoked
            else Principal(row.id, row.org_id, frozenset(row.scopes), row.rate_limits)
        )
        if len(self._entries) >= _MAX_CACHE:
            self._entries.clear()
        self._entries[digest] = (now + self._ttl, principal)
        return principal

    def forget(self) -> None:
        self._entries.clear()

    async def flush_last_used(self) -> None:
        if not self._used:
            return
        used, self._used = sorted(self._used), set()
        async with self._engine.begin() as conn:
            await orgs.touch_keys(conn, used)

    async def run_flusher(self, every_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.flush_last_used()
            except Exception:  # the next flush retries; last-used is advisory
                pass


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


async def current_principal(request: Request) -> Principal:
    key = presented_key(request)
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 128:
        raise ApiError(401, INVALID_KEY)
    cache: KeyCache = request.app.state.key_cache
    principal = await cache.resolve(key)
    if principal is None:
        raise ApiError(401, INVALID_KEY)
    request.state.principal = principal
    return principal


ScopeCheck = Callable[[Principal], Awaitable[Principal]]


def require_any_scope(*scopes: str) -> ScopeCheck:
    """Any one of ``scopes`` (or ``admin``) will do."""
    wanted = frozenset(scopes)
    missing = (
        f"This key lacks the '{scopes[0]}' scope."
        if len(scopes) == 1
        else f"This key lacks one of the scopes {sorted(wanted)}."
    )

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not (wanted & principal.scopes) and "admin" not in principal.scopes:
            raise ApiError(403, "forbidden", missing)
        return principal

    return dependency


def require_scope(scope: str) -> ScopeCheck:
    return require_any_scope(scope)


async def _customer_app(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    # Deliberately no admin bypass: a merchant's keys must never read a customer's PIN,
    # or the PIN would no longer prove the customer is present.
    if "customer_app" not in principal.scopes:
        raise ApiError(403, "forbidden", "This endpoint needs a 'customer_app' key.")
    return principal


PosKey = Annotated[Principal, Depends(require_scope("pos"))]
AdminKey = Annotated[Principal, Depends(require_scope("admin"))]
CustomerAppKey = Annotated[Principal, Depends(_customer_app)]
PosOrCustomerAppKey = Annotated[Principal, Depends(require_any_scope("pos", "customer_app"))]
