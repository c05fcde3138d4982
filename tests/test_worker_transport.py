"""The worker's consumer waits at most PUNCHLINE_FETCH_MAX_WAIT_MS per fetch, not faust's 1500."""

from __future__ import annotations

from typing import cast

import aiokafka
from faust.transport.drivers import aiokafka as driver

from tests.conftest import make_settings
from workers.app import build_app
from workers.transport import PunchlineApp


async def test_the_worker_consumer_is_built_with_the_configured_fetch_wait() -> None:
    settings = make_settings(
        "postgresql+asyncpg://127.0.0.1:1/none",
        "127.0.0.1:1",
        fetch_max_wait_ms=37,
        worker_health_port=0,
    )
    app = build_app(settings)
    assert isinstance(app, PunchlineApp)
    consumer = cast(driver.Consumer, app.consumer)
    thread = consumer._new_consumer_thread()
    built = thread._create_worker_consumer(app.transport)
    assert isinstance(built, aiokafka.AIOKafkaConsumer)
    assert built._fetch_max_wait_ms == 37
    assert built._group_id == app.conf.id  # the rest is faust's own construction
    assert built._enable_auto_commit is False
