"""Per-key, per-endpoint-group rate limits on the ``limits`` library.

Limits up to ``EXACT_UP_TO`` hits per window use a moving window: exact, which
seed 000's small defaults need, but it keeps one entry per hit. Larger limits
(a chain's integration key: thousands per second) use a sliding-window counter,
O(1) per hit and approximate at window edges, where that does not matter.

In-memory storage serves one process; with ``rate_limit_storage_url`` set
(``redis://…``) the moving windows live in Redis and hold across every API
process. Defaults are seed 000's; ``api_keys.rate_limits`` overrides a group
for one key. If Redis is unreachable the edge fails open (and logs): a cashier
is not refused because the limiter is down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from ingest_api.auth import Principal, current_principal
from ingest_api.errors import TOO_MANY_REQUESTS, ApiError
from punchline.config import Settings

log = logging.getLogger(__name__)

Group = Literal["earn", "redeem", "coupons", "customer"]
_KEY_PREFIX = "punchline-rl"
EXACT_UP_TO = 1000


@lru_cache(maxsize=1024)
def limit_item(spec: str) -> RateLimitItem:
    """A parsed limit such as "60/minute" (cached)."""
    return parse(spec)


class TooManyRequests(ApiError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(429, TOO_MANY_REQUESTS)
        self.headers = {"Retry-After": str(retry_after_s)}


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self._defaults = dict(settings.rate_limit_defaults)
        self._pool: ConnectionPool | None = None
        url = settings.rate_limit_storage_url
        self._storage: Storage
        if url:
            self._pool = ConnectionPool.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            self._storage = RedisStorage(
                "async+" + url,
                implementation="redispy",
                key_prefix=_KEY_PREFIX,
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type]  # passed through to redis
            )
        else:
            self._storage = MemoryStorage()
        self._exact = MovingWindowRateLimiter(self._storage)
        self._cheap = SlidingWindowCounterRateLimiter(self._storage)

    def _strategy(
        self, item: RateLimitItem
    ) -> MovingWindowRateLimiter | SlidingWindowCounterRateLimiter:
        return self._exact if item.amount <= EXACT_UP_TO else self._cheap

    def limit_for(self, group: str, overrides: Mapping[str, str] | None) -> RateLimitItem:
        spec = (overrides or {}).get(group) or self._defaults[group]
        try:
            return limit_item(spec)
        except ValueError:
            log.warning("unparseable rate limit %r for group %s; using the default", spec, group)
            return limit_item(self._defaults[group])

    async def hit(self, item: RateLimitItem, *identifiers: str) -> int | None:
        """Count one hit. None when allowed, else the seconds until the next slot frees."""
        strategy = self._strategy(item)
        try:
            if await strategy.hit(item, *identifiers):
                return None
            stats = await strategy.get_window_stats(item, *identifiers)
        except StorageError as exc:
            log.warning("rate-limit storage unavailable, failing open: %r", exc)
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def check(self, principal: Principal, group: str) -> None:
        item = self.limit_for(group, principal.rate_limits)
        retry_after = await self.hit(item, "key", str(principal.key_id), group)
        if retry_after is not None:
            raise TooManyRequests(retry_after)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        else:
            await self._storage.reset()


async def _limiter(request: Request) -> RateLimiter:
    # async: FastAPI runs a sync dependency in the thread pool, a thread hop per request.
    return request.app.state.rate_limiter  # type: ignore[no-any-return]


RateLimiterDep = Annotated[RateLimiter, Depends(_limiter)]


def rate_limited(group: Group):  # type: ignore[no-untyped-def]
    """A route dependency: authenticate, then count the hit against the key's group limit."""

    async def dependency(
        limiter: RateLimiterDep,
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> None:
        await limiter.check(principal, group)

    return dependency


# Routes declared elsewhere (orders.py, orders_batch.py) are limited by the app at include
# time. A batch counts as one request, whatever its item count: a per-item cost would make
# one 1,000-order batch exceed seed 000's default of 60/minute.
_ROUTE_GROUPS: dict[tuple[str, str], Group] = {
    ("POST", "/v1/orders"): "earn",
    ("POST", "/v1/orders:batch"): "earn",
    ("POST", "/v1/orders/{external_id}/cancel"): "earn",
    ("POST", "/v1/orders/{external_id}/delete"): "earn",
    ("POST", "/v1/orders/{external_id}/refund"): "earn",
}


async def route_rate_limit(
    request: Request,
    limiter: RateLimiterDep,
    principal: Annotated[Principal, Depends(current_principal)],
) -> None:
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.scope.get("path", "")
    group = _ROUTE_GROUPS.get((request.method, path))
    if group is not None:
        await limiter.check(principal, group)
