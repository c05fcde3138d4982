"""Producing to Kafka: acks=all, bounded in time, so a dead broker is a fast 503.

Tansu has no idempotent producer for aiokafka, so idempotence is off and the
sink's unique keys absorb any producer retry. When a produce fails after the
events were handed to aiokafka, the refusal fence records them, so the 503 is
final: the worker refuses them if the broker delivers them later.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from ingest_api.errors import ApiError
from ingest_api.metrics import measure_produce
from ingest_api.refusal_fence import RefusalFence
from punchline.config import Settings
from schemas.events import IngestEvent


class BrokerUnavailable(ApiError):
    """503. ``consumed`` names events a worker had applied before the refusal was recorded."""

    def __init__(
        self, consumed: set[uuid.UUID] | None = None, *, handed_over: bool = False
    ) -> None:
        super().__init__(503, "broker_unavailable", "The event log is unavailable; retry shortly.")
        self.headers = {"Retry-After": "1"}
        self.consumed = consumed or set()
        self.handed_over = handed_over  # aiokafka held the messages when we gave up


class CachedPartitioner:
    """aiokafka's default partitioner (murmur2 of the key), remembering recent keys' hashes.

    The same partition for the same key as ``DefaultPartitioner``; murmur2 in pure
    Python is a noticeable share of a produce, and the keys (org + customer) repeat.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:  # as aiokafka's default: any available partition
            return random.choice(available or all_partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class EventProducer:
    def __init__(self, settings: Settings, *, fence: RefusalFence | None = None) -> None:
        self._settings = settings
        self._fence = fence
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
                    # No linger: a lone order goes out at once (linger adds its full
                    # delay to every answer at low load), and under load aiokafka
                    # batches anyway: while a produce is in flight to the broker, the
                    # next messages gather into the following request.
                    linger_ms=0,
                    partitioner=CachedPartitioner(),
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

    async def send_events(self, events: Sequence[IngestEvent]) -> None:
        """Produce events to the ingest topic; return once the broker acknowledged all.

        On failure, raise :class:`BrokerUnavailable` after fencing the events off,
        unless every one of them turns out to be consumed already (then it returns).
        """
        messages = [(e.key, e.model_dump_json().encode()) for e in events]
        try:
            await self.send_many(self._settings.ingest_topic, messages)
        except BrokerUnavailable as refused:
            if self._fence is None or not refused.handed_over:
                raise
            consumed = await self._fence.refuse(events)
            if consumed >= {e.event_id for e in events}:
                return
            raise BrokerUnavailable(consumed) from refused

    async def send_many(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Send all messages; return only when every one is acknowledged by the broker.

        A :class:`BrokerUnavailable` raised here has ``handed_over`` set when the
        messages had reached aiokafka (and so may still be delivered).
        """
        with measure_produce(len(messages)):
            producer = await self._client()
            try:
                async with asyncio.timeout(self._settings.produce_timeout_s):
                    futures = [await producer.send(topic, v, key=k) for k, v in messages]
                    await asyncio.gather(*futures)
            except (KafkaError, OSError, TimeoutError) as exc:
                raise BrokerUnavailable(handed_over=True) from exc

    async def ping(self) -> bool:
        try:
            producer = await self._client()
            async with asyncio.timeout(self._settings.produce_timeout_s):
                await producer.client.fetch_all_metadata()
            return True
        except Exception:
            return False
