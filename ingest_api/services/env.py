"""What a synchronous flow needs besides its domain arguments: the engine, the PIN
policy, the limiter and the time of the request (from the injectable clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.rate_limits import RateLimiter
from ingest_api.services.pin_codes import PinPolicy


@dataclass(frozen=True, slots=True)
class Env:
    engine: AsyncEngine
    pins: PinPolicy
    limiter: RateLimiter
    secret: bytes
    qr_ttl_s: int
    phone_region: str
    now: datetime
