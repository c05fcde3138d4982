"""Dependencies shared by the POS routes: the request's :class:`Env` and rate limits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from ingest_api.deps import EngineDep, SettingsDep
from ingest_api.rate_limits import RateLimiter
from ingest_api.services.clock import Clock
from ingest_api.services.env import Env
from ingest_api.services.pin_codes import PinPolicy


async def _env(request: Request, settings: SettingsDep, engine: EngineDep) -> Env:
    clock: Clock = request.app.state.clock
    limiter: RateLimiter = request.app.state.rate_limiter
    return Env(
        engine=engine,
        pins=PinPolicy.from_settings(settings),
        limiter=limiter,
        secret=settings.secret_key.encode(),
        qr_ttl_s=settings.qr_ttl_s,
        phone_region=settings.default_phone_region,
        now=clock(),
    )


EnvDep = Annotated[Env, Depends(_env)]


def envelope(data: Any) -> dict[str, Any]:
    """Loyalite's success shape."""
    return {"data": data}
