"""Fault injection (issue 7): Postgres restarts mid-stream, so every connection dies.

The test starts a Postgres cluster of its own (``ThrowawayCluster``, its own loopback port
and data dir) and never touches the machine's server on 5432. Orders are accepted through
the real edge, then two real `punchline worker` processes and a `punchline relay` apply
them while the cluster restarts twice: a fast shutdown (clients get ``admin_shutdown``) and
an immediate one (connections just die) that stays down until the workers have retried
against a closed port. The workers must ride through both without being restarted, and the
stream ends with the usual check: every accepted order applied exactly once, books clean.

A second test asks the edge's question: while Postgres is down, does ``POST /v1/orders``
(which needs no database round trip once the API key is known) still answer 202? Yes, with
a key it knew before the outage, even once its cache entry expired (stale-if-error); a key
never seen gets a 503 ``database_unavailable``, never a 500.

Figures from the last run are in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import orgs
from punchline.devstack.broker import TansuBroker
from punchline.devstack.postgres import ThrowawayCluster, create_database, to_async_url
from punchline.migrate import upgrade
from tests.conftest import api_client, make_settings
from tests.support.factories import Tenant, create_tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool
from tests.test_faults import (
    _bodies,
    _exactly_once,
    _order_count,
    _post_batches,
    _start_relay,
    _stop,
)
from workers.topics import ensure_topics

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.fault,
]

STREAM = 10_000  # orders accepted, then applied across the restarts
WORKERS = 2
SYSTEM_POSTGRES_PORT = 5432
RETRY_LINE = "batch write failed; retrying"
# describe_error's "DBAPIError(Error, sqlstate=08003)", or a repr such as "OSError(111, …)".
_ERROR = re.compile(r"""'error': ['"](\w+)(?:\((\w+), sqlstate=(\w+)\))?""")


# --- a cluster of this test's own ------------------------------------------------------------


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[ThrowawayCluster, str]]:
    """A private cluster with a migrated database; yields it and the database's async URL."""
    # As root, initdb and postgres run as the `postgres` OS user, which cannot enter
    # pytest's 0700 basetemp; the cluster then makes its dir in the system temp dir
    # (deleted on stop) instead of under tmp_path.
    base_dir = None if os.geteuid() == 0 else str(tmp_path)
    cluster = ThrowawayCluster(base_dir=base_dir).start()
    try:
        assert cluster.port != SYSTEM_POSTGRES_PORT
        url = to_async_url(create_database(cluster.dsn, "punchline_pg_restart"))
        upgrade(url)
        yield cluster, url
    finally:
        cluster.stop()


# --- worker evidence ---------------------------------------------------------------------------


def _retries(pool: WorkerPool) -> list[str]:
    """The error of every "batch write failed; retrying" line of every worker, log by log.

    A wrapped driver error is named by its SQLSTATE (``sqlstate 08003``), or the driver's
    exception when it has none (``InternalClientError``); anything else by its class
    (``ConnectionRefusedError``).
    """
    found = []
    for path in sorted(pool.log_dir.glob("worker-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if RETRY_LINE not in line:
                continue
            match = _ERROR.search(line)
            if match is None:
                found.append("?")
            elif match[3] and match[3] != "None":
                found.append(f"sqlstate {match[3]}")
            else:
                found.append(match[2] or match[1])
    return found


def _exits(pool: WorkerPool) -> list[tuple[int, int | None]]:
    return [(p.pid, p.poll()) for p in pool.procs]


def _all_alive(pool: WorkerPool, relay: subprocess.Popen[bytes], log_dir: Path) -> None:
    """Fail at once (not at a deadline) when a worker or the relay has exited."""
    exited = [(pid, code) for pid, code in _exits(pool) if code is not None]
    if exited:
        raise AssertionError(f"worker(s) exited (pid, code): {exited}\n{pool.logs()}")
    if relay.poll() is not None:
        relay_log = (log_dir / "relay.log").read_text(errors="replace")[-4000:]
        raise AssertionError(f"the relay exited with {relay.returncode}\n{relay_log}")


async def _applied(
    engine: AsyncEngine,
    org_id: uuid.UUID,
    n: int,
    pool: WorkerPool,
    relay: subprocess.Popen[bytes],
    timeout_s: float,
) -> int:
    """Wait until ``n`` orders are applied, while every process stays alive; the count."""

    async def probe() -> int:
        _all_alive(pool, relay, pool.log_dir)
        return await _order_count(engine, org_id)

    try:
        return await eventually(
            probe, lambda c: c >= n, timeout_s=timeout_s, interval_s=0.25, describe=f"{n} applied"
        )
    except AssertionError as exc:
        if "applied not reached" not in str(exc):
            raise
        raise AssertionError(f"{exc}\n--- worker logs ---\n{pool.logs()}") from None


# --- 1. Postgres restarts twice while the workers apply --------------------------------------


async def test_postgres_restarts_mid_stream_and_the_same_workers_apply_everything_once(
    own_postgres: tuple[ThrowawayCluster, str], broker: TansuBroker, tmp_path: Path
) -> None:
    cluster, url = own_postgres
    settings: Settings = make_settings(url, broker.bootstrap)
    await ensure_topics(settings)
    engine = create_engine(settings, pool_size=2)
    pool = WorkerPool(settings, log_dir=str(tmp_path))
    relay: subprocess.Popen[bytes] | None = None
    try:
        tenant = await create_tenant(engine)
        org = tenant.org_id
        # Every order is accepted before the restarts: while Postgres is down the edge
        # cannot authenticate a key whose cache entry expired (the second test below).
        async with api_client(settings) as api:
            accepted = await _post_batches(api, tenant, _bodies(tenant, "pr", STREAM))
        assert len(set(accepted)) == STREAM

        relay = _start_relay(settings, tmp_path)
        procs = [pool.start() for _ in range(WORKERS)]
        pids = [p.pid for p in procs]
        restarts_at: list[int] = []
        retries_during: list[int] = []

        async def restart(at_fraction: float, *, outage: bool) -> None:
            assert relay is not None
            await _applied(engine, org, int(STREAM * at_fraction), pool, relay, 120)
            applied = await _order_count(engine, org)
            assert 0 < applied < STREAM, f"the restart must land mid-stream; applied {applied}"
            restarts_at.append(applied)
            before = len(_retries(pool))
            if not outage:
                # Fast shutdown: each open connection gets FATAL 57P01 admin_shutdown.
                await asyncio.to_thread(cluster.restart, mode="fast")
            else:
                # Immediate shutdown (connections just die), and the port stays closed
                # until the workers have retried against it a few times.
                await asyncio.to_thread(cluster.stop, "immediate", True)
                try:

                    async def retried() -> int:
                        _all_alive(pool, relay, tmp_path)
                        return len(await asyncio.to_thread(_retries, pool))

                    await eventually(
                        retried,
                        lambda n: n >= before + 3,
                        timeout_s=30,
                        describe="workers retrying while Postgres is down",
                    )
                finally:
                    await asyncio.to_thread(cluster.start)
            # The workers come back on their own: more orders get applied after the restart.
            await _applied(engine, org, applied + 1, pool, relay, 60)
            retries_during.append(len(_retries(pool)) - before)

        await restart(1 / 4, outage=False)
        await restart(1 / 2, outage=True)

        await _applied(engine, org, STREAM, pool, relay, 120)
        assert _exits(pool) == [(pid, None) for pid in pids], "same worker processes, alive"
        errors = _retries(pool)
        assert errors, "the workers never saw a failed write: the restarts landed on idle workers"
        assert all(n > 0 for n in retries_during), retries_during
        # While the port was closed they kept reconnecting (and backing off), not hanging.
        assert "ConnectionRefusedError" in errors, errors
        assert "unrecoverable" not in pool.logs()
        await _exactly_once(engine, org, set(accepted))
        # Still the same processes once the books are checked.
        _all_alive(pool, relay, tmp_path)
        assert [p.pid for p in pool.procs] == pids
        print(
            f"\npostgres restart: {STREAM} orders, {WORKERS} workers, 2 restarts (fast, then"
            f" immediate with an outage) at applied counts {restarts_at}; {len(errors)}"
            f" failed writes retried ({retries_during} per restart): {dict(Counter(errors))}"
        )
    finally:
        pool.stop_all()
        if relay is not None:
            _stop(relay)
        await engine.dispose()


# --- 2. The edge while Postgres is down --------------------------------------------------------


async def _post_order(api: httpx.AsyncClient, tenant: Tenant, external_id: str) -> str:
    """The status code, or the exception the app raised instead of answering."""
    body = order_body(customer_code=tenant.customer_codes[0], external_id=external_id)
    try:
        response = await asyncio.wait_for(
            api.post("/v1/orders", json=body, headers=tenant.headers), timeout=20
        )
    except Exception as exc:  # ASGITransport re-raises what the app did not handle
        return f"raised {type(exc).__name__}"
    return str(response.status_code)


async def test_post_orders_still_answers_202_while_postgres_is_down(
    own_postgres: tuple[ThrowawayCluster, str], broker: TansuBroker
) -> None:
    cluster, url = own_postgres
    settings: Settings = make_settings(url, broker.bootstrap)
    await ensure_topics(settings)
    engine = create_engine(settings, pool_size=2)
    try:
        tenant = await create_tenant(engine)
        async with engine.begin() as conn:
            _, unseen_key = await orgs.create_api_key(
                conn, org_id=tenant.org_id, name="never used before the outage", scopes=["pos"]
            )
    finally:
        await engine.dispose()
    unseen = Tenant(org_id=tenant.org_id, key=unseen_key, customer_codes=tenant.customer_codes)
    tag = uuid.uuid4().hex[:6]
    async with api_client(settings) as api:
        assert await _post_order(api, tenant, f"up-{tag}") == "202"  # the key is now cached
        await asyncio.to_thread(cluster.stop, "fast", True)
        try:
            cached = await _post_order(api, tenant, f"down-cached-{tag}")
            # Let the key's cache entry expire: the next request is the first that would
            # need the database if the edge looked keys up on its hot path.
            await asyncio.sleep(settings.api_key_cache_ttl_s + 0.5)
            expired = await _post_order(api, tenant, f"down-expired-{tag}")
            never_seen = await api.post(
                "/v1/orders",
                json=order_body(customer_code=tenant.customer_codes[0]),
                headers=unseen.headers,
            )
        finally:
            await asyncio.to_thread(cluster.start)
        # Postgres is back: the edge recovers without a restart either way.
        after = await eventually(
            lambda: _post_order(api, tenant, f"after-{tag}"),
            lambda code: code == "202",
            timeout_s=30,
            describe="POST /v1/orders answering 202 after the restart",
        )
    print(
        f"\nedge while Postgres is down: key cached {cached}, cache expired {expired},"
        f" key never seen {never_seen.status_code}"
    )
    assert cached == "202", "a cached key must not need the database"
    assert expired == "202", "an expired entry is served stale while Postgres cannot answer"
    assert never_seen.status_code == 503, never_seen.text
    assert never_seen.json()["error"] == "database_unavailable"
    assert never_seen.headers["retry-after"] == "1"
    assert after == "202"
