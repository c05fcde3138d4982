"""Throwaway services for one bench run: broker, database, tenant, API, worker, relay.

``bench_stack(name)`` creates a uniquely named database on the local Postgres
(``punchline.devstack.postgres``), migrates it, starts a private Tansu broker
(``punchline.devstack.broker``) and creates the topics; the script then starts
``punchline api --workers N`` / ``worker`` / ``relay`` on free loopback ports as it
needs them. Everything is stopped and the database dropped on the way out, on an
exception or SIGTERM too; the child processes also die with this one
(``devstack.spawn`` sets PR_SET_PDEATHSIG). Databases left by a bench run that
was SIGKILLed are dropped by the next run (their names carry the owner's pid).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import LOG_DIR, log

from punchline.bootstrap import CHAIN_RATE_LIMITS
from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import customers, orgs
from punchline.devstack import log_tail, run_sync, spawn, stop_process
from punchline.devstack.broker import TansuBroker
from punchline.devstack.ports import free_port
from punchline.devstack.postgres import (
    PostgresServer,
    create_database,
    drop_database,
    resolve_server,
    to_async_url,
)
from punchline.migrate import upgrade

DB_PREFIX = "plbench_"
_DB_NAME = re.compile(rf"^{DB_PREFIX}[a-z_]+_(\d+)_[0-9a-f]+$")


@dataclass
class Tenant:
    org_id: uuid.UUID
    key: str
    codes: list[str]
    customer_ids: list[int]


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class BenchStack:
    name: str
    server: PostgresServer
    db_name: str
    broker: TansuBroker
    settings: Settings
    env: dict[str, str]
    services: list[Service] = field(default_factory=list)

    # -- processes -----------------------------------------------------------------

    def _spawn(self, label: str, args: list[str], env: dict[str, str] | None = None) -> Service:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log_path = LOG_DIR / f"{self.name}-{label}.log"
        with open(log_path, "wb") as out:
            proc = spawn(
                [sys.executable, "-m", "punchline.cli", *args],
                log=out,
                env=env or self.env,
            )
        service = Service(label, proc, log_path)
        self.services.append(service)
        return service

    def start_api(self, workers: int = 1, label: str | None = None) -> Service:
        """``punchline api --workers N`` on a free port; returns once /readyz answers 200."""
        port = free_port()
        env = dict(self.env)
        if workers > 1:  # /metrics across processes, as the README asks
            metrics_dir = LOG_DIR / f"{self.name}-prom-{port}"
            metrics_dir.mkdir(parents=True, exist_ok=True)
            for stale in metrics_dir.iterdir():
                stale.unlink()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        service = self._spawn(
            label or f"api{workers}",
            ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env,
        )
        service.url = f"http://127.0.0.1:{port}"
        _wait_http(f"{service.url}/readyz", 60, service)
        if workers > 1:  # every worker process up and serving, not just the first
            deadline = time.monotonic() + 30
            import psutil

            while time.monotonic() < deadline:
                if len(psutil.Process(service.pid).children(recursive=True)) >= workers:
                    break
                time.sleep(0.2)
            time.sleep(1.0)
        return service

    def start_worker(
        self, label: str = "worker", *, health: bool = True, **settings: Any
    ) -> Service:
        """``punchline worker``; returns once /healthz answers 200.

        ``health=False``: no health server and no wait (the caller watches the worker's
        progress itself). ``settings`` override :class:`Settings` fields for this process.
        """
        port = free_port() if health else 0
        env = {**self.env, **_env_vars(settings), "PUNCHLINE_WORKER_HEALTH_PORT": str(port)}
        service = self._spawn(label, ["worker"], env)
        if health:
            service.url = f"http://127.0.0.1:{port}"
            _wait_http(f"{service.url}/healthz", 90, service)
        return service

    def start_relay(self) -> Service:
        return self._spawn("relay", ["relay"])

    def stop(self, service: Service) -> None:
        stop_process(service.proc, signal.SIGTERM, timeout=15)
        with contextlib.suppress(ValueError):
            self.services.remove(service)

    def close(self) -> None:
        for service in reversed(list(self.services)):
            self.stop(service)

    # -- data ------------------------------------------------------------------------

    def run(self, coro_factory: Any, timeout: float = 300) -> Any:
        """Run an ``async def f(engine)`` against the bench database."""

        async def go() -> Any:
            engine = create_engine(self.settings, pool_size=2)
            try:
                return await coro_factory(engine)
            finally:
                await engine.dispose()

        return run_sync(go, timeout=timeout)

    def seed_tenant(self, customers_count: int, *, points_each: int = 0) -> Tenant:
        """An org, a pos+admin key with a chain's rate limits, customers (credited if asked)."""
        return self.run(lambda e: _seed(e, customers_count, points_each))

    def add_customers(self, tenant: Tenant, count: int, *, points_each: int = 0) -> Tenant:
        """More customers in the same org, as a separate Tenant view (same key)."""
        return self.run(lambda e: _add_customers(e, tenant, count, points_each))


async def _seed(engine: Any, count: int, points_each: int) -> Tenant:
    async with engine.begin() as conn:
        org_id = await orgs.create_org(conn, name=f"bench-{secrets.token_hex(3)}", timezone="UTC")
        _, key = await orgs.create_api_key(
            conn,
            org_id=org_id,
            name="bench",
            scopes=["pos", "admin"],
            rate_limits=CHAIN_RATE_LIMITS,
        )
    tenant = Tenant(org_id=org_id, key=key, codes=[], customer_ids=[])
    return await _add_customers(engine, tenant, count, points_each)


async def _add_customers(engine: Any, tenant: Tenant, count: int, points_each: int) -> Tenant:
    from sqlalchemy import text

    codes: list[str] = []
    ids: list[int] = []
    async with engine.begin() as conn:
        for _ in range(count):
            row = await customers.insert_customer(conn, org_id=tenant.org_id)
            codes.append(row.code)
            ids.append(int(row.id))
        if points_each > 0:
            # A credit is a ledger entry plus the wallet, as tests/support/factories.credit.
            await conn.execute(
                text(
                    "INSERT INTO ledger_entries (org_id, customer_id, asset, delta, kind,"
                    " external_id) SELECT :org, c, 'points', :n, 'adjust', 'seed-' || c"
                    " FROM unnest(CAST(:ids AS bigint[])) AS c"
                ),
                {"org": tenant.org_id, "n": points_each, "ids": ids},
            )
            await conn.execute(
                text(
                    "INSERT INTO wallets (customer_id, asset, org_id, balance)"
                    " SELECT c, 'points', :org, :n FROM unnest(CAST(:ids AS bigint[])) AS c"
                ),
                {"org": tenant.org_id, "n": points_each, "ids": ids},
            )
    return Tenant(org_id=tenant.org_id, key=tenant.key, codes=codes, customer_ids=ids)


def _wait_http(url: str, timeout_s: float, service: Service) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(
                f"{service.name} exited with {service.proc.returncode}:\n"
                f"{log_tail(service.log_path)}"
            )
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout_s}s:\n{log_tail(service.log_path)}")


def _raise_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _drop_orphans(admin_dsn: str) -> None:
    """Drop bench databases whose owning process is gone (a SIGKILLed run)."""

    async def names() -> list[str]:
        import asyncpg

        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", DB_PREFIX + "%"
            )
            return [r["datname"] for r in rows]
        finally:
            await conn.close()

    with contextlib.suppress(Exception):
        for name in run_sync(names, timeout=15):
            m = _DB_NAME.match(name)
            if m and not _pid_alive(int(m.group(1))):
                log(f"dropping leftover database {name}")
                drop_database(admin_dsn, name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def bench_stack(name: str, **settings: Any) -> Iterator[BenchStack]:
    """Broker + fresh migrated database + topics; services started on demand.

    ``settings`` override :class:`Settings` fields for every process started
    (e.g. ``partitions=12``); they are passed as ``PUNCHLINE_*`` variables.
    """
    _raise_on_sigterm()
    server = resolve_server()
    db_name = f"{DB_PREFIX}{name}_{os.getpid()}_{secrets.token_hex(3)}"
    broker = TansuBroker(log_path=str(LOG_DIR / f"{name}-broker.log"))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    stack: BenchStack | None = None
    created = False
    try:
        _drop_orphans(server.admin_dsn)
        dsn = create_database(server.admin_dsn, db_name)
        created = True
        database_url = to_async_url(dsn)
        upgrade(database_url)
        broker.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUNCHLINE_")}
        env.update(
            {
                "DATABASE_URL": database_url,
                "PUNCHLINE_KAFKA_BOOTSTRAP": broker.bootstrap,
                "PUNCHLINE_SESSION_TIMEOUT_S": "6",
                "PUNCHLINE_WORKER_HEALTH_PORT": "0",
                "PUNCHLINE_CONSUMER_GROUP": f"bench-{name}",
            }
        )
        env.update(_env_vars(settings))
        app_settings = Settings(
            database_url=database_url,
            kafka_bootstrap=broker.bootstrap,
            **settings,
        )
        from workers.topics import ensure_topics

        asyncio.run(ensure_topics(app_settings))
        stack = BenchStack(name, server, db_name, broker, app_settings, env)
        log(f"stack up: db {db_name}, broker {broker.bootstrap}")
        yield stack
    finally:
        if stack is not None:
            stack.close()
        for leftover in LOG_DIR.glob(f"customers-*-{os.getpid()}.json"):
            leftover.unlink(missing_ok=True)
        broker.stop()
        if created:
            try:
                drop_database(server.admin_dsn, db_name)
            except Exception as exc:
                log(f"could not drop {db_name}: {exc!r}")
        server.stop()


def _env_vars(settings: dict[str, Any]) -> dict[str, str]:
    """:class:`Settings` field overrides as the ``PUNCHLINE_*`` variables a process reads."""
    return {f"PUNCHLINE_{k.upper()}": _env_value(v) for k, v in settings.items()}


def _env_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# -- the load generator, as a separate process ---------------------------------------

LOADGEN = Path(__file__).resolve().with_name("loadgen.py")


def loadgen_command(
    url: str, tenant: Tenant | None, workload: str, customers_file: Path | None, **options: Any
) -> list[str]:
    argv = [sys.executable, str(LOADGEN), "--url", url, "--workload", workload]
    if tenant is not None:
        argv += ["--key", tenant.key]
    if customers_file is not None:
        argv += ["--customers", str(customers_file)]
    for k, v in options.items():
        if v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        argv += [flag] if v is True else [flag, str(v)]
    return argv


def start_loadgen(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_loadgen(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        tail = err.decode()[-2000:]
        raise RuntimeError(f"loadgen did not finish in {timeout}s: {tail}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen exited {proc.returncode}: {err.decode()[-2000:]}")
    return dict(json.loads(out))


def run_loadgen(argv: list[str], timeout: float) -> dict[str, Any]:
    return finish_loadgen(start_loadgen(argv), timeout)


def write_customers(tenant: Tenant, label: str) -> Path:
    path = LOG_DIR / f"customers-{label}-{os.getpid()}.json"
    path.write_text(json.dumps(tenant.codes))
    return path


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)


def run_measured(argv: list[str], pids: dict[str, int | None], timeout: float) -> dict[str, Any]:
    """Run the load generator and add the CPU cores each process tree in ``pids`` used.

    CPU seconds are taken around the whole run and divided by the generator's
    measured window (the processes idle while the generator starts up).
    """
    from common import CpuMeter

    meter = CpuMeter(pids).start()
    result = run_loadgen(argv, timeout)
    cpu, wait = meter.stop()
    wall = max(float(result["elapsed_s"]), 1e-6)
    result["cores"] = {k: round(v / wall, 2) for k, v in cpu.items()}
    result["cores"]["loadgen"] = result["cpu_cores"]
    # Seconds per second a process tree was runnable but had no CPU (starved by others).
    result["cpu_wait"] = {k: round(v / wall, 2) for k, v in wait.items()}
    return result


def generator_ceiling(seconds: float, concurrency: int = 32) -> dict[str, Any]:
    """The generator against a server that answers at once: its own ceiling, req/s."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(LOADGEN), "--serve", str(port), "--duration", str(seconds + 10)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # {"listening": port}
        codes = LOG_DIR / f"ceiling-{os.getpid()}.json"
        codes.write_text(json.dumps(["A1B2C3D4"]))
        result = run_loadgen(
            [
                sys.executable,
                str(LOADGEN),
                "--url",
                f"http://127.0.0.1:{port}",
                "--workload",
                "order",
                "--customers",
                str(codes),
                "--concurrency",
                str(concurrency),
                "--duration",
                str(seconds),
            ],
            timeout=seconds + 30,
        )
        codes.unlink(missing_ok=True)
        return result
    finally:
        stop_process(server, signal.SIGTERM, timeout=5)
