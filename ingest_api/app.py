"""The FastAPI edge: authenticate, validate, produce, answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI

from ingest_api.auth import KeyCache
from ingest_api.body_limits import BodyLimits
from ingest_api.errors import ERROR_RESPONSES, install_error_handlers
from ingest_api.metrics import MeasuredWaiter, RequestMetrics, metrics_endpoint
from ingest_api.producer import EventProducer
from ingest_api.rate_limits import RateLimiter, route_rate_limit
from ingest_api.refusal_fence import RefusalFence
from ingest_api.routes import (
    admin_customers,
    admin_keys,
    admin_org,
    admin_products,
    admin_rewards,
    admin_rules,
    admin_webhooks,
    coupons,
    customers,
    earn,
    health,
    lifecycle,
    orders,
    orders_batch,
    pin,
    redeem,
    rewards,
    webhook,
)
from ingest_api.services.clock import Clock, utc_now
from punchline.config import Settings, get_settings, to_libpq_url
from punchline.db.engine import create_engine


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production_safety()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        fence = RefusalFence(engine, lock_timeout_s=min(2.0, settings.produce_timeout_s))
        producer = EventProducer(settings, fence=fence)
        waiter = MeasuredWaiter(engine, to_libpq_url(settings.database_url))
        key_cache = KeyCache(engine, settings.api_key_cache_ttl_s, stale_s=settings.api_key_stale_s)
        rate_limiter = RateLimiter(settings)
        app.state.rate_limiter = rate_limiter
        app.state.settings = settings
        app.state.engine = engine
        app.state.producer = producer
        app.state.waiter = waiter
        app.state.key_cache = key_cache
        await producer.start()
        await waiter.start()
        flusher = asyncio.create_task(key_cache.run_flusher())
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            with contextlib.suppress(Exception):
                await key_cache.flush_last_used()
            await waiter.stop()
            await producer.stop()  # drains in-flight produces
            await rate_limiter.close()
            await engine.dispose()

    app = FastAPI(
        title="Punchline",
        version="0.1.0",
        summary="Loyalty backbone for point-of-sale chains.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.clock = clock or utc_now
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(orders.router, dependencies=[Depends(route_rate_limit)])
    app.include_router(orders_batch.router, dependencies=[Depends(route_rate_limit)])
    app.include_router(lifecycle.router, dependencies=[Depends(route_rate_limit)])
    app.include_router(earn.router)
    app.include_router(customers.router)
    app.include_router(pin.router)
    app.include_router(redeem.router)
    app.include_router(rewards.router)
    app.include_router(coupons.router)
    app.include_router(webhook.router)
    app.include_router(admin_rules.router)
    app.include_router(admin_rewards.router)
    app.include_router(admin_customers.router)
    app.include_router(admin_products.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_org.router)
    app.include_router(admin_webhooks.router)
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes)
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    # Outermost, so it counts the 413/415 that BodyLimits answers before routing too.
    app.add_middleware(RequestMetrics, paths=lambda: app.openapi()["paths"])
    return app
