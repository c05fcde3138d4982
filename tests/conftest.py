"""Real services for the tests: one Postgres database and one Tansu broker per run.

Postgres comes from DATABASE_URL, else 127.0.0.1:5432, else a throwaway
cluster. Each run creates its own database (dropped at the end) and each test
that streams gets its own topic prefix and consumer group, so runs and tests
cannot see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.devstack.broker import TansuBroker
from punchline.devstack.postgres import (
    create_database,
    drop_database,
    resolve_server,
    to_async_url,
)
from punchline.migrate import upgrade
from tests.support.factories import Tenant, create_tenant
from tests.support.workers import WorkerPool

RUN_ID = secrets.token_hex(4)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    server = resolve_server()
    name = f"punchline_test_{RUN_ID}"
    dsn = create_database(server.admin_dsn, name)
    url = to_async_url(dsn)
    upgrade(url)
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            drop_database(server.admin_dsn, name)
        server.stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[TansuBroker]:
    with TansuBroker().start() as running:
        yield running


def make_settings(database_url: str, bootstrap: str, **overrides: object) -> Settings:
    unique = secrets.token_hex(3)
    values: dict[str, object] = {
        "database_url": database_url,
        "kafka_bootstrap": bootstrap,
        "topic_prefix": f"t{RUN_ID}{unique}.",
        "consumer_group": f"workers-{RUN_ID}-{unique}",
        "partitions": 4,
        "session_timeout_s": 3.0,
        "batch_size": 200,
        "batch_within_s": 0.05,
        "worker_health_port": 0,
        "api_key_cache_ttl_s": 1.0,
        "produce_timeout_s": 1.5,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, broker: TansuBroker) -> Settings:
    return make_settings(database_url, broker.bootstrap)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(Settings(database_url=database_url), pool_size=5)
    yield eng
    await eng.dispose()


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from ingest_api.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://punchline.test", timeout=30
        ) as client:
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from workers.topics import ensure_topics

    await ensure_topics(settings)
    async with api_client(settings) as c:
        yield c


@pytest.fixture
def workers(settings: Settings, tmp_path: object) -> Iterator[WorkerPool]:
    pool = WorkerPool(settings, log_dir=str(tmp_path))
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
async def tenant(engine: AsyncEngine) -> Tenant:
    return await create_tenant(engine)


def pytest_report_header(config: pytest.Config) -> str:
    source = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "auto-resolved Postgres"
    return f"punchline test run {RUN_ID}; {source}"


__all__ = ["api_client", "make_settings", "uuid"]
