"""Run real `punchline worker` processes for a test, and kill them on demand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from punchline.config import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "PUNCHLINE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "PUNCHLINE_TOPIC_PREFIX": settings.topic_prefix,
            "PUNCHLINE_CONSUMER_GROUP": settings.consumer_group,
            "PUNCHLINE_PARTITIONS": str(settings.partitions),
            "PUNCHLINE_SESSION_TIMEOUT_S": str(settings.session_timeout_s),
            "PUNCHLINE_BATCH_SIZE": str(settings.batch_size),
            "PUNCHLINE_BATCH_WITHIN_S": str(settings.batch_within_s),
            "PUNCHLINE_WORKER_HEALTH_PORT": str(settings.worker_health_port),
            "PUNCHLINE_ORPHAN_AFTER_S": str(settings.orphan_after_s),
            "PUNCHLINE_ORPHAN_CHECK_EVERY_S": str(settings.orphan_check_every_s),
            "PUNCHLINE_LOG_LEVEL": "INFO",
        }
    )
    return env


class WorkerPool:
    def __init__(self, settings: Settings, *, log_dir: str) -> None:
        self.settings = settings
        self.log_dir = Path(log_dir)
        self.procs: list[subprocess.Popen[bytes]] = []
        self._n = 0

    def start(self) -> subprocess.Popen[bytes]:
        self._n += 1
        log = open(self.log_dir / f"worker-{self._n}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "punchline.cli", "worker"],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.kill(proc)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-4000:] for p in sorted(self.log_dir.glob("worker-*.log"))
        )
