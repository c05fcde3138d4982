"""Find or start a Postgres server, and make throwaway databases on it.

Resolution order (``resolve_server``):

1. ``DATABASE_URL`` if set, as-is (admin work goes to that server's ``postgres``
   database);
2. 127.0.0.1:5432 if user ``postgres`` gets in within ~2 s (trust auth on these
   machines);
3. a ``ThrowawayCluster``: ``initdb`` + ``postgres`` from the highest
   /usr/lib/postgresql/*/bin (or ``initdb`` on PATH, or the binaries inside the
   ``pgserver`` wheel), on a free loopback port, deleted on stop.

All functions are sync and run asyncpg on a private event loop, so they work
from plain code and from inside a running loop (pytest-asyncio fixtures).
"""

from __future__ import annotations

import atexit
import functools
import glob
import importlib.util
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from punchline.devstack import log_tail, run_sync, spawn, stop_process
from punchline.devstack.ports import LOOPBACK, free_port

__all__ = [
    "PostgresServer",
    "ThrowawayCluster",
    "create_database",
    "drop_database",
    "find_pg_bin_dir",
    "resolve_server",
    "to_async_url",
    "to_libpq_url",
    "with_database",
]

DEFAULT_DSN = f"postgresql://postgres@{LOOPBACK}:5432/postgres"
_DB_NAME = re.compile(r"^[a-z0-9_]{1,63}$")
_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
# Test tuning. fsync and full_page_writes only protect against an OS crash, which a
# throwaway cluster does not survive anyway. synchronous_commit stays on: with it
# off, restart() (an immediate shutdown) would lose just-committed transactions
# and fault tests would blame the application for it.
_TEST_SETTINGS = {
    "listen_addresses": f"'{LOOPBACK}'",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "lc_messages": "'C'",
    "log_min_messages": "warning",
}


# -- URLs ----------------------------------------------------------------------


def to_libpq_url(dsn: str) -> str:
    """``postgresql+asyncpg://`` (any ``+driver``) or ``postgres://`` → ``postgresql://``."""
    scheme, sep, rest = dsn.partition("://")
    if sep and (scheme == "postgres" or scheme.startswith("postgresql")):
        return f"postgresql://{rest}"
    return dsn


def to_async_url(dsn: str) -> str:
    """The SQLAlchemy URL for asyncpg: ``postgresql+asyncpg://…``."""
    libpq = to_libpq_url(dsn)
    if libpq.startswith("postgresql://"):
        return "postgresql+asyncpg://" + libpq[len("postgresql://") :]
    return dsn


def with_database(dsn: str, name: str) -> str:
    """The same server, user and options, pointed at database ``name``."""
    parts = urlsplit(to_libpq_url(dsn))
    return urlunsplit(parts._replace(path=f"/{name}"))


# -- server resolution -----------------------------------------------------------


@dataclass
class PostgresServer:
    """A server to make databases on. ``stop()`` only stops a cluster we started."""

    admin_dsn: str
    owned_cluster: ThrowawayCluster | None = None

    def stop(self) -> None:
        if self.owned_cluster is not None:
            self.owned_cluster.stop()


def resolve_server(local_dsn: str = DEFAULT_DSN, probe_timeout: float = 2.0) -> PostgresServer:
    """``DATABASE_URL``, else the local server on 5432, else a throwaway cluster."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return PostgresServer(admin_dsn=with_database(url, "postgres"))
    if _accepts(local_dsn, probe_timeout):
        return PostgresServer(admin_dsn=local_dsn)
    cluster = ThrowawayCluster().start()
    return PostgresServer(admin_dsn=cluster.dsn, owned_cluster=cluster)


def _accepts(dsn: str, timeout: float) -> bool:
    try:
        run_sync(lambda: _fetchval(dsn, "SELECT 1", timeout), timeout=timeout + 2.0)
        return True
    except Exception:
        return False


async def _fetchval(dsn: str, query: str, limit_s: float = 10.0) -> object:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=limit_s)
    try:
        return await conn.fetchval(query, timeout=limit_s)
    finally:
        await conn.close(timeout=limit_s)


async def _execute(dsn: str, statement: str, limit_s: float = 60.0) -> None:
    """One statement over the simple protocol (CREATE/DROP DATABASE need that)."""
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=min(limit_s, 10.0))
    try:
        await conn.execute(statement, timeout=limit_s)
    finally:
        await conn.close(timeout=10.0)


# -- databases -----------------------------------------------------------------


def _checked(name: str) -> str:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"database name must match [a-z0-9_]{{1,63}}, got {name!r}")
    return name


def create_database(admin_dsn: str, name: str) -> str:
    """Create database ``name`` (UTF8, from template0) and return its libpq DSN."""
    _checked(name)
    # template0: template1 refuses to be copied while anyone is connected to it.
    run_sync(
        lambda: _execute(
            admin_dsn, f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
        ),
        timeout=60,
    )
    return with_database(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` if it exists, terminating its connections first."""
    _checked(name)
    run_sync(
        lambda: _execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
        timeout=60,
    )


# -- a cluster of our own ------------------------------------------------------


def find_pg_bin_dir() -> Path:
    """Directory holding ``initdb`` and ``postgres``.

    Highest /usr/lib/postgresql/*/bin, else ``initdb`` on PATH, else the
    binaries bundled in the ``pgserver`` wheel.
    """

    def major(path: str) -> float:
        version = Path(path).parent.parent.name
        try:
            return float(version)
        except ValueError:
            return -1.0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major, reverse=True)
    if found:
        return Path(found[0]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "initdb").is_file():
            return candidate
    raise FileNotFoundError(
        "no Postgres server binaries: install postgresql (apt-get install postgresql), "
        "pip install pgserver, or set DATABASE_URL"
    )


class ThrowawayCluster:
    """A private Postgres cluster in a temp dir, on a loopback port.

    ``postgres`` runs as our child (not daemonised by pg_ctl) so it dies with
    this process. As root, initdb and postgres run as the ``postgres`` OS user,
    since both refuse to run as root.
    """

    def __init__(
        self,
        port: int | None = None,
        base_dir: str | None = None,
        bin_dir: str | None = None,
        os_user: str | None = None,
    ) -> None:
        self._requested_port = port
        self.port: int | None = port
        self._base_dir = base_dir
        self._bin_dir = Path(bin_dir) if bin_dir else None
        self._os_user = os_user
        self.dir: Path | None = None  # removed on final stop
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        """Admin DSN ``postgresql://postgres@127.0.0.1:PORT/postgres``."""
        if self.port is None:
            raise RuntimeError("ThrowawayCluster has not been started")
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        if self.dir is None:
            raise RuntimeError("ThrowawayCluster has not been started")
        return self.dir / "data"

    @property
    def log_path(self) -> Path | None:
        return self.dir / "postgres.log" if self.dir else None

    @property
    def pid(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def start(self, timeout: float = 60.0) -> ThrowawayCluster:
        """initdb (first time only), run postgres, wait until it accepts connections."""
        if self.pid is not None:
            return self
        if self.dir is None:
            self._init()
        deadline = time.monotonic() + timeout
        # A given port, or the one a restart must keep, is tried once; a port we
        # pick ourselves is re-picked if another process takes it first.
        fixed = self.port is not None
        error = ""
        for _ in range(1 if fixed else 3):
            if not fixed:
                self.port = free_port()
            self._launch()
            error = self._wait_ready(deadline)
            if not error:
                return self
            self._halt(signal.SIGKILL)
            if time.monotonic() >= deadline:
                break
        raise RuntimeError(
            f"Postgres in {self.dir} did not start: {error}\n"
            f"--- {self.log_path} (tail) ---\n{log_tail(self.log_path)}"
        )

    def _user(self) -> str | None:
        if self._os_user:
            return self._os_user
        return "postgres" if os.geteuid() == 0 else None

    def _init(self) -> None:
        bin_dir = self._bin_dir or find_pg_bin_dir()
        self._bin_dir = bin_dir
        user = self._user()
        self.dir = Path(tempfile.mkdtemp(prefix="punchline-pg-", dir=self._base_dir))
        atexit.register(self.stop)  # the dir goes at exit even if start() fails
        if user is not None:
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                self.stop()
                raise RuntimeError(
                    f"running as root, but OS user {user!r} (to run initdb) does not exist"
                ) from None
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        log_path = self.dir / "initdb.log"
        with open(log_path, "wb") as log:
            proc = spawn(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                log=log,
                cwd=self.dir,
                user=user,
            )
            try:
                code = proc.wait(120)
            except subprocess.TimeoutExpired:
                code = stop_process(proc, signal.SIGKILL)
        if code != 0:
            tail = log_tail(log_path)
            self.stop()
            raise RuntimeError(f"initdb failed with code {code}:\n{tail}")
        settings = dict(_TEST_SETTINGS, unix_socket_directories=f"'{self.dir}'")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# punchline.devstack test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _launch(self) -> None:
        assert self._bin_dir is not None and self.dir is not None and self.port is not None
        with open(self.dir / "postgres.log", "ab") as log:
            self._proc = spawn(
                [str(self._bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)],
                log=log,
                cwd=self.dir,
                user=self._user(),
            )

    def _wait_ready(self, deadline: float) -> str:
        assert self._proc is not None
        last = "no connection yet"
        while True:
            code = self._proc.poll()
            if code is not None:
                return f"postgres exited with code {code}"
            remaining = deadline - time.monotonic()
            probe = functools.partial(
                _fetchval, self.dsn, "SELECT 1", min(2.0, max(remaining, 0.2))
            )
            try:
                run_sync(probe, timeout=max(remaining, 0.2) + 3.0)
                return ""
            except Exception as exc:
                last = repr(exc)
            if time.monotonic() >= deadline:
                return last
            time.sleep(0.1)

    def _halt(self, sig: int) -> None:
        if self._proc is not None:
            stop_process(self._proc, sig, timeout=30.0)
            self._proc = None

    def restart(self, timeout: float = 60.0, mode: str = "immediate") -> None:
        """Like ``pg_ctl restart -m MODE``: every connection dies, data stays, same port.

        ``immediate`` (the default) kills the backends at once (clients mostly see a
        reset or a closed connection) and recovers from WAL on start; ``fast`` ends each
        session with FATAL ``admin_shutdown`` (SQLSTATE 57P01) and checkpoints. For a
        longer outage, ``stop(mode, keep_data=True)`` and later ``start()`` do the same
        in two steps.
        """
        if self.dir is None:
            raise RuntimeError("ThrowawayCluster has not been started")
        self.stop(mode, keep_data=True)
        self.start(timeout)

    def stop(self, mode: str = "fast", keep_data: bool = False) -> None:
        """Shut down (``smart``/``fast``/``immediate``, as pg_ctl) and delete the dir.

        ``keep_data=True`` keeps the dir for a later ``start()``. Idempotent.
        """
        if mode not in _STOP_SIGNALS:
            raise ValueError(f"mode must be one of {sorted(_STOP_SIGNALS)}, got {mode!r}")
        self._halt(_STOP_SIGNALS[mode])
        if not keep_data:
            atexit.unregister(self.stop)
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ThrowawayCluster port={self.port} dir={self.dir} pid={self.pid}>"
