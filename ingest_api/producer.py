"""Producing to Kafka: acks=all, bounded in time, so a dead broker is a fast 503.

Tansu has no idempotent producer for aiokafka, so idempotence is off and the
sink's unique keys absorb any producer retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingest_api.errors import ApiError
from ingest_api.metrics import measure_produce
from punchline.config import Settings


class BrokerUnavailable(ApiError):
    def __init__(self) -> None:
        super().__init__(503, "broker_unavailable", "The event log is unavailable; retry shortly.")
        self.headers = {"Retry-After": "1"}


class EventProducer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._failed_at = float("-inf")  # when the last start attempt failed (monotonic)

    async def _client(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        asked_at = time.monotonic()
        async with self._lock:
            if self._producer is None:
                if self._failed_at > asked_at:
                    # A start failed while this request queued behind it: 503 now, rather
                    # than one more produce_timeout_s per queued request.
                    raise BrokerUnavailable()
                timeout_ms = int(self._settings.produce_timeout_s * 1000)
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._settings.kafka_bootstrap,
                    acks="all",
                    enable_idempotence=False,
                    linger_ms=2,
                    request_timeout_ms=max(timeout_ms, 1000),
                    max_batch_size=1024 * 1024,
                    compression_type=None,
                )
                try:
                    await asyncio.wait_for(producer.start(), self._settings.produce_timeout_s)
                except (KafkaError, OSError, TimeoutError) as exc:
                    self._failed_at = time.monotonic()
                    await producer.stop()
                    raise BrokerUnavailable() from exc
                self._producer = producer
            return self._producer

    async def start(self) -> None:
        try:
            await self._client()
        except BrokerUnavailable:
            pass  # the first request retries; the edge starts even if the broker is late

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_many(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Send all messages; return only when every one is acknowledged by the broker."""
        with measure_produce(len(messages)):
            producer = await self._client()
            try:
                async with asyncio.timeout(self._settings.produce_timeout_s):
                    futures = [await producer.send(topic, v, key=k) for k, v in messages]
                    await asyncio.gather(*futures)
            except (KafkaError, OSError, TimeoutError) as exc:
                raise BrokerUnavailable() from exc

    async def ping(self) -> bool:
        try:
            producer = await self._client()
            async with asyncio.timeout(self._settings.produce_timeout_s):
                await producer.client.fetch_all_metadata()
            return True
        except Exception:
            return False
