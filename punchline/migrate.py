"""Programmatic Alembic: `punchline migrate` and the test fixtures use this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

from punchline.config import to_async_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", to_async_url(database_url).replace("%", "%%"))
    return cfg


def _in_thread_if_loop_running(fn: Callable[[], None]) -> None:
    # Alembic's env.py calls asyncio.run(); that cannot nest inside a running loop.
    import threading

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn()
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def upgrade(database_url: str, revision: str = "head") -> None:
    _in_thread_if_loop_running(lambda: command.upgrade(alembic_config(database_url), revision))


def check(database_url: str) -> None:
    """Fail when the models and the migrations disagree (alembic check)."""
    _in_thread_if_loop_running(lambda: command.check(alembic_config(database_url)))
