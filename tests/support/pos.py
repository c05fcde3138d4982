"""Helpers for the POS API tests: an app with an injectable clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx

from ingest_api.app import create_app
from punchline.config import Settings


class FakeClock:
    """A clock the test moves by hand: expiry is tested without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@contextlib.asynccontextmanager
async def pos_client(
    settings: Settings, clock: FakeClock | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    from workers.topics import ensure_topics

    await ensure_topics(settings)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://punchline.test", timeout=60
        ) as client:
            yield client


def code_ref(code: str) -> dict[str, str]:
    return {"type": "code", "value": code}
