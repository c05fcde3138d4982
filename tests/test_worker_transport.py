"""The worker's consumer waits at most PUNCHLINE_FETCH_MAX_WAIT_MS per fetch, not faust's 1500."""

from __future__ import annotations

import aiokafka

from punchline.config import Settings
from workers.app import build_app
from workers.transport import PunchlineApp


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": "postgresql+asyncpg://127.0.0.1:1/none",
        "kafka_bootstrap": "127.0.0.1:1",
        "worker_health_port": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_the_worker_consumer_is_built_with_the_configured_fetch_wait() -> None:
    app = build_app(_settings(fetch_max_wait_ms=37))
    assert isinstance(app, PunchlineApp)
    consumer = app.consumer
    thread = consumer._new_consumer_thread()  # type: ignore[attr-defined]
    built = thread._create_worker_consumer(app.transport)
    assert isinstance(built, aiokafka.AIOKafkaConsumer)
    assert built._fetch_max_wait_ms == 37
    assert built._group_id == app.conf.id  # the rest is faust's own construction
    assert built._enable_auto_commit is False
