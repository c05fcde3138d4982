"""Liveness of the relay and the webhook dispatcher, which have no HTTP port."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from punchline.config import Settings
from punchline.heartbeat import beat, is_fresh
from tests.support.workers import settings_env


def test_beat_creates_then_refreshes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    assert not is_fresh(str(path), 60)
    beat(str(path))
    assert is_fresh(str(path), 60)
    os.utime(path, (1, 1))  # a heartbeat from 1970
    assert not is_fresh(str(path), 60)
    beat(str(path))
    assert is_fresh(str(path), 60)
    beat(None)  # disabled: nothing to do


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("command", ["relay", "webhooks"])
async def test_the_process_loop_beats(settings: Settings, tmp_path: Path, command: str) -> None:
    path = tmp_path / f"{command}.alive"
    env = {**settings_env(settings), "PUNCHLINE_HEARTBEAT_PATH": str(path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "punchline.cli",
        command,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            if is_fresh(str(path), 60) or proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert proc.returncode is None, f"punchline {command} exited"
        assert is_fresh(str(path), 60)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
