"""Postgres resolution, per-run databases and a throwaway cluster, on real servers."""

from __future__ import annotations

import glob
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from punchline.devstack.ports import free_port, port_is_open
from punchline.devstack.postgres import (
    PostgresServer,
    ThrowawayCluster,
    create_database,
    drop_database,
    resolve_server,
    to_async_url,
    with_database,
)

needs_initdb = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb"),
    reason="no /usr/lib/postgresql/*/bin/initdb to start a throwaway cluster with",
)


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    resolved = resolve_server()
    yield resolved
    resolved.stop()


async def _fetchval(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_resolve_server_gives_a_working_admin_dsn(server: PostgresServer) -> None:
    assert server.admin_dsn.startswith("postgresql://")
    assert await _fetchval(server.admin_dsn, "SELECT current_database()") == "postgres"


async def test_create_and_drop_database_round_trip(server: PostgresServer) -> None:
    name = f"devstack_{uuid.uuid4().hex[:12]}"
    dsn = create_database(server.admin_dsn, name)
    assert dsn == with_database(server.admin_dsn, name)

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        assert await conn.fetchval("SELECT current_database()") == name
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        # Dropping terminates this open connection rather than failing on it.
        drop_database(server.admin_dsn, name)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await conn.fetchval("SELECT 1")
    finally:
        conn.terminate()

    exists = await _fetchval(
        server.admin_dsn, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    )
    assert exists == 0
    drop_database(server.admin_dsn, name)  # IF EXISTS: dropping twice is fine


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Upper", id="uppercase"),
        pytest.param('x"; DROP DATABASE postgres; --', id="injection"),
        pytest.param("", id="empty"),
        pytest.param("a" * 64, id="too long"),
        pytest.param("with-dash", id="dash"),
    ],
)
def test_database_names_are_validated(name: str) -> None:
    with pytest.raises(ValueError, match="database name"):
        create_database("postgresql://postgres@127.0.0.1:1/postgres", name)
    with pytest.raises(ValueError, match="database name"):
        drop_database("postgresql://postgres@127.0.0.1:1/postgres", name)


@pytest.mark.parametrize(
    ("url", "admin"),
    [
        pytest.param(
            "postgresql+asyncpg://u:p@db.example:6543/punchline?ssl=require",
            "postgresql://u:p@db.example:6543/postgres?ssl=require",
            id="asyncpg url with query",
        ),
        pytest.param(
            "postgres://u@127.0.0.1/app",
            "postgresql://u@127.0.0.1/postgres",
            id="postgres scheme",
        ),
    ],
)
def test_database_url_wins_and_points_admin_at_postgres_db(
    monkeypatch: pytest.MonkeyPatch, url: str, admin: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    resolved = resolve_server()
    assert resolved.admin_dsn == admin
    assert resolved.owned_cluster is None


def test_to_async_url() -> None:
    assert to_async_url("postgresql://a@h/db") == "postgresql+asyncpg://a@h/db"
    assert to_async_url("postgres://a@h/db") == "postgresql+asyncpg://a@h/db"
    assert to_async_url("postgresql+asyncpg://a@h/db") == "postgresql+asyncpg://a@h/db"


@needs_initdb
async def test_throwaway_cluster_start_restart_stop() -> None:
    cluster = ThrowawayCluster().start()
    try:
        directory = cluster.dir
        assert directory is not None and directory.is_dir()
        assert cluster.dsn == f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
        assert await _fetchval(cluster.dsn, "SHOW fsync") == "off"
        assert await _fetchval(cluster.dsn, "SHOW listen_addresses") == "127.0.0.1"

        conn = await asyncpg.connect(cluster.dsn, timeout=10)
        await conn.execute("CREATE TABLE survives_restart (id int)")
        port, pid = cluster.port, cluster.pid
        cluster.restart()
        assert cluster.port == port and cluster.pid not in (None, pid)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await conn.fetchval("SELECT 1")
        conn.terminate()
        assert await _fetchval(cluster.dsn, "SELECT count(*) FROM survives_restart") == 0
    finally:
        cluster.stop()
    assert cluster.pid is None
    assert not directory.exists()
    assert not port_is_open(port)
    cluster.stop()  # idempotent


@needs_initdb
def test_stop_keep_data_then_start_again() -> None:
    cluster = ThrowawayCluster().start()
    try:
        cluster.stop(keep_data=True)
        assert cluster.dir is not None and cluster.dir.is_dir()
        cluster.start()
        assert cluster.pid is not None
    finally:
        cluster.stop()
    assert cluster.dir is None


@needs_initdb
def test_resolve_server_falls_back_to_a_throwaway_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    nobody_home = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    resolved = resolve_server(local_dsn=nobody_home, probe_timeout=0.5)
    try:
        assert resolved.owned_cluster is not None
        assert resolved.admin_dsn == resolved.owned_cluster.dsn
        name = f"devstack_{uuid.uuid4().hex[:12]}"
        dsn = create_database(resolved.admin_dsn, name)
        assert os.path.basename(dsn) == name
    finally:
        resolved.stop()
    assert resolved.owned_cluster.dir is None
