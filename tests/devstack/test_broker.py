"""TansuBroker against the real Tansu binary, on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from punchline.devstack.broker import TansuBroker, find_tansu_binary
from punchline.devstack.ports import port_is_open


@pytest.fixture(scope="module")
def broker() -> Iterator[TansuBroker]:
    with TansuBroker() as running:
        yield running


def _topic() -> str:
    return f"devstack.test.{uuid.uuid4().hex[:12]}"


async def _create_topic(bootstrap: str, name: str, partitions: int) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
        [described] = await admin.describe_topics([name])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


def _producer(bootstrap: str) -> AIOKafkaProducer:
    # Tansu has no idempotent producer for aiokafka: acks=all, idempotence off.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, request_timeout_ms=15_000
    )


def test_started_broker_has_bootstrap_and_pid(broker: TansuBroker) -> None:
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.pid is not None
    assert port_is_open(broker.port)


async def test_topic_round_trip_acks_all_earliest(broker: TansuBroker) -> None:
    topic = _topic()
    assert await _create_topic(broker.bootstrap, topic, 3) == [0, 1, 2]

    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(30)}
    producer = _producer(broker.bootstrap)
    await producer.start()
    try:
        partitions = set()
        for key, value in sent.items():
            meta = await producer.send_and_wait(topic, value, key=key)
            partitions.add(meta.partition)
    finally:
        await producer.stop()
    assert partitions == {0, 1, 2}

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=f"devstack-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",  # Tansu's ListOffsets(LATEST) is wrong
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
    )
    await consumer.start()
    received: dict[bytes, bytes] = {}
    try:

        async def drain() -> None:
            async for message in consumer:
                assert message.key is not None and message.value is not None
                received[message.key] = message.value
                if len(received) == len(sent):
                    return

        await asyncio.wait_for(drain(), timeout=30)
    finally:
        await consumer.stop()
    assert received == sent


async def test_paused_broker_holds_produce_until_resumed(broker: TansuBroker) -> None:
    topic = _topic()
    await _create_topic(broker.bootstrap, topic, 1)
    producer = _producer(broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")  # metadata and connection ready
        broker.pause()
        try:
            pending = asyncio.ensure_future(producer.send_and_wait(topic, b"during-pause"))
            done, _ = await asyncio.wait({pending}, timeout=1.0)
            assert not done, "produce completed while the broker was stopped"
        finally:
            broker.resume()
        meta = await asyncio.wait_for(pending, timeout=15)
        assert meta.offset == 1
    finally:
        await producer.stop()


async def test_stop_closes_the_port_and_is_idempotent() -> None:
    # Started from inside a running event loop: start() must not need one.
    own = TansuBroker().start()
    port = own.port
    assert port_is_open(port)
    own.stop()
    assert own.pid is None
    assert not port_is_open(port)
    own.stop()


async def test_start_after_stop_reuses_the_port() -> None:
    own = TansuBroker().start()
    try:
        port = own.port
        own.stop()
        own.start()
        assert own.port == port
        topic = _topic()
        assert await _create_topic(own.bootstrap, topic, 1) == [0]
    finally:
        own.stop()


def test_pause_requires_a_running_broker() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        TansuBroker().pause()


def test_failed_start_raises_with_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'tansu says no' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*tansu says no"):
        TansuBroker(binary=str(fake)).start(timeout=5)


def test_find_tansu_binary_honours_tansu_bin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert find_tansu_binary().endswith("tansu")
    monkeypatch.setenv("TANSU_BIN", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="TANSU_BIN"):
        find_tansu_binary()
