"""The local stack for ``punchline dev`` and ``punchline demo``.

Broker (Tansu, memory storage, free loopback port) + Postgres (per the
resolution rule in devstack) + migrations + one API process + one worker +
the outbox relay + the webhook dispatcher, all stopped together.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from punchline.config import Settings, to_libpq_url
from punchline.devstack.broker import TansuBroker
from punchline.devstack.ports import free_port
from punchline.devstack.postgres import create_database, resolve_server, to_async_url

STATE_DIR = Path(".punchline")


@dataclass
class Stack:
    settings: Settings
    api_url: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, *args: str, log_name: str) -> subprocess.Popen[bytes]:
        STATE_DIR.mkdir(exist_ok=True)
        log = open(STATE_DIR / f"{log_name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "punchline.cli", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


def _wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early; see {STATE_DIR}/*.log")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout_s}s")


@contextlib.contextmanager
def running_stack(
    *, port: int, database: str = "punchline_dev", fresh_db: bool = False
) -> Iterator[Stack]:
    from punchline.migrate import upgrade

    server = resolve_server()
    STATE_DIR.mkdir(exist_ok=True)
    broker = TansuBroker(log_path=str(STATE_DIR / "broker.log"))
    try:
        if fresh_db:
            from punchline.devstack.postgres import drop_database

            with contextlib.suppress(Exception):
                drop_database(server.admin_dsn, database)
        dsn = create_database(server.admin_dsn, database)
        database_url = to_async_url(dsn)
        upgrade(database_url)
        broker.start()
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap=broker.bootstrap,
            session_timeout_s=6.0,
            worker_health_port=free_port(),
        )
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url,
                "PUNCHLINE_KAFKA_BOOTSTRAP": broker.bootstrap,
                "PUNCHLINE_SESSION_TIMEOUT_S": str(settings.session_timeout_s),
                "PUNCHLINE_WORKER_HEALTH_PORT": str(settings.worker_health_port),
            }
        )
        stack = Stack(settings=settings, api_url=f"http://127.0.0.1:{port}", env=env)
        try:
            api = stack.spawn("api", "--port", str(port), log_name="api")
            worker = stack.spawn("worker", log_name="worker")
            stack.spawn("relay", log_name="relay")
            stack.spawn("webhooks", log_name="webhooks")
            _wait_http(f"{stack.api_url}/healthz", 60, api)
            _wait_http(f"http://127.0.0.1:{settings.worker_health_port}/healthz", 90, worker)
            yield stack
        finally:
            stack.stop()
    finally:
        broker.stop()
        server.stop()


def run_dev(*, port: int) -> int:
    import asyncio

    from punchline.bootstrap import CHAIN_RATE_LIMITS, create_org_with_key

    with running_stack(port=port) as stack:
        org_id, key = asyncio.run(
            create_org_with_key(
                stack.settings,
                name="Demo Coffee Co.",
                timezone="Europe/Dublin",
                rate_limits=CHAIN_RATE_LIMITS,
            )
        )
        print(f"API: {stack.api_url}")
        print(f"API key: {key}")
        print(f"org: {org_id}")
        print(f"Postgres: {to_libpq_url(stack.settings.database_url)}")
        print(f"Kafka: {stack.settings.kafka_bootstrap}")
        print(f"Logs: {STATE_DIR}/  (Ctrl-C stops everything)")
        sys.stdout.flush()
        try:
            while all(p.poll() is None for p in stack.procs):
                time.sleep(0.5)
            print("a service exited; stopping", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nstopping…")
            return 0
