"""``Annotated`` dependency aliases for the routes."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.producer import EventProducer
from ingest_api.waiter import ResultWaiter
from punchline.config import Settings


async def _settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def _engine(request: Request) -> AsyncEngine:
    return cast(AsyncEngine, request.app.state.engine)


async def _producer(request: Request) -> EventProducer:
    return cast(EventProducer, request.app.state.producer)


async def _waiter(request: Request) -> ResultWaiter:
    return cast(ResultWaiter, request.app.state.waiter)


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
ProducerDep = Annotated[EventProducer, Depends(_producer)]
WaiterDep = Annotated[ResultWaiter, Depends(_waiter)]
