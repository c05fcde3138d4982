"""Liveness for processes without an HTTP port (relay, webhook dispatcher).

Each loop iteration touches ``PUNCHLINE_HEARTBEAT_PATH``; a container
healthcheck fails when the file is older than it should be, i.e. when the loop
is stuck or dead.
"""

from __future__ import annotations

import os
import time


def beat(path: str | None) -> None:
    if not path:
        return
    try:
        os.utime(path)
    except FileNotFoundError:
        with open(path, "a"):
            pass


def is_fresh(path: str, max_age_s: float) -> bool:
    try:
        return time.time() - os.path.getmtime(path) <= max_age_s
    except OSError:
        return False
