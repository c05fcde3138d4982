"""``Annotated`` dependency aliases for the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.producer import EventProducer
from ingest_api.waiter import ResultWaiter
from punchline.config import Settings


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _engine(request: Request) -> AsyncEngine:
    return request.app.state.engine  # type: ignore[no-any-return]


async def _producer(request: Request) -> EventProducer:
    return request.app.state.producer  # type: ignore[no-any-return]


async def _waiter(request: Request) -> ResultWaiter:
    return request.app.state.waiter  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
ProducerDep = Annotated[EventProducer, Depends(_producer)]
WaiterDep = Annotated[ResultWaiter, Depends(_waiter)]
