"""Engine construction, shared by the API, the workers and the CLI.

Bound parameters and result rows carry emails, phones and PIN hashes, so the engine
never logs them, whatever level the ``sqlalchemy.engine`` loggers are set to.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from punchline.config import Settings


def _not_a_row(record: logging.LogRecord) -> bool:
    return record.msg != "Row %r"


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    if _not_a_row not in engine_logger.filters:
        engine_logger.addFilter(_not_a_row)
    return create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": "punchline"}},
    )
