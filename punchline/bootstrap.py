"""Create orgs and keys from the shell (and for dev, demo and tests)."""

from __future__ import annotations

import uuid

from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import orgs

# What a busy chain's integration key gets in dev and the demo (seed 000's defaults are
# per till; one key of a chain carries every till).
CHAIN_RATE_LIMITS = {
    "earn": "100000/second",
    "redeem": "10000/second",
    "coupons": "10000/second",
    "customer": "10000/second",
}


async def create_org_with_key(
    settings: Settings,
    *,
    name: str,
    timezone: str = "UTC",
    scopes: list[str] | None = None,
    rate_limits: dict[str, str] | None = None,
) -> tuple[uuid.UUID, str]:
    engine = create_engine(settings, pool_size=1)
    try:
        async with engine.begin() as conn:
            org_id = await orgs.create_org(conn, name=name, timezone=timezone)
            _, key = await orgs.create_api_key(
                conn,
                org_id=org_id,
                name="bootstrap",
                scopes=scopes or ["pos", "admin"],
                rate_limits=rate_limits,
            )
        return org_id, key
    finally:
        await engine.dispose()


async def create_key(
    settings: Settings,
    *,
    org: str,
    scopes: list[str],
    name: str,
    rate_limits: dict[str, str] | None = None,
) -> str:
    engine = create_engine(settings, pool_size=1)
    try:
        async with engine.begin() as conn:
            _, key = await orgs.create_api_key(
                conn,
                org_id=uuid.UUID(org),
                name=name,
                scopes=sorted(set(scopes)),
                rate_limits=rate_limits,
            )
        return key
    finally:
        await engine.dispose()
