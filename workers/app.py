"""The ingest worker: a stateless faust agent on ``punchline.ingest.v1``.

Each ``take_events`` batch goes through :class:`workers.sink.BatchWriter` in
one Postgres transaction that also stores the partitions' next offsets. The
agent body never lets an exception out (faust 0.15 would ack the batch
anyway): transient failures are retried with backoff, holding the partitions
back; anything else ends the process at once, without acknowledging.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaProducer
from faust.types import TP

from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import batches
from schemas.events import DeadLetter
from workers.messages import Record
from workers.retry import retry_forever
from workers.rulesets import RuleSetCache
from workers.sink import BatchWriter

log = logging.getLogger("punchline.worker")


def build_app(settings: Settings) -> faust.App:
    web_port = settings.worker_health_port
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{h}" for h in settings.kafka_bootstrap.split(",")],
        autodiscover=False,
        web_enabled=web_port > 0,
        web_bind="127.0.0.1" if web_port > 0 else None,
        web_port=web_port or 6066,
        web_in_thread=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 5),
        broker_commit_interval=1.0,
        producer_acks=-1,
        stream_buffer_maxsize=max(4096, settings.batch_size * 4),
        consumer_max_fetch_size=4 * 1024 * 1024,
    )
    engine = create_engine(settings, pool_size=2)
    topic = app.topic(settings.ingest_topic, key_serializer="raw", value_serializer="raw")
    dlq_producer: dict[str, AIOKafkaProducer] = {}

    async def dead_letters(letters: Sequence[DeadLetter]) -> None:
        producer = dlq_producer.get("p")
        if producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
            await producer.start()
            dlq_producer["p"] = producer
        futures = [
            await producer.send(settings.dlq_topic, orjson.dumps(letter.model_dump()))
            for letter in letters
        ]
        for future in futures:
            await future
        for letter in letters:
            log.warning("dead-lettered message", extra={"reason": letter.reason[:200]})

    rule_sets = RuleSetCache()
    writer = BatchWriter(
        engine,
        group=settings.consumer_group,
        rule_sets=rule_sets,
        versions=rule_sets.versions,
        dead_letters=dead_letters,
    )

    async def seek_to_stored(partitions: Sequence[int]) -> None:
        async with engine.connect() as conn:
            stored = await batches.read_offsets(
                conn, group=settings.consumer_group, topic=settings.ingest_topic
            )
        targets = {TP(settings.ingest_topic, p): stored[p] for p in partitions if p in stored}
        if targets:
            # seek_wait runs on the consumer's own thread and resets faust's read offsets;
            # a plain seek from this thread races aiokafka's fetcher.
            await app.consumer.seek_wait(targets)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        mine = [tp.partition for tp in assigned if tp.topic == settings.ingest_topic]
        try:
            await retry_forever(lambda: seek_to_stored(mine), max_backoff_s=2.0)
        except Exception:
            log.exception("cannot read stored offsets; stopping")
            os._exit(70)
        log.info("partitions assigned", extra={"partitions": sorted(mine)})

    async def earliest_offsets(partitions: set[int]) -> dict[int, int]:
        tps = [TP(settings.ingest_topic, p) for p in partitions]
        found = await app.consumer.earliest_offsets(*tps)
        return {tp.partition: off for tp, off in found.items() if off is not None}

    async def write(records: list[Record]) -> None:
        outcome = await writer.write(records)
        if outcome.seek_to:
            earliest = await earliest_offsets(set(outcome.seek_to))
            if any(earliest.get(p, 0) > off for p, off in outcome.seek_to.items()):
                outcome = await writer.write(records, earliest=earliest)
            if outcome.seek_to:
                log.warning(
                    "gap before stored offsets; seeking back",
                    extra={"partitions": {str(p): o for p, o in outcome.seek_to.items()}},
                )
                await app.consumer.seek_wait(
                    {TP(settings.ingest_topic, p): off for p, off in outcome.seek_to.items()}
                )
        log.debug(
            "batch written",
            extra={
                "size": len(records),
                "applied": outcome.applied,
                "duplicates": outcome.duplicates,
                "rejected": outcome.rejected,
                "dead_lettered": outcome.dead_lettered,
                "redelivered": outcome.redelivered,
            },
        )

    def on_retry(exc: BaseException, tries: int) -> None:
        log.warning(
            "batch write failed; retrying", extra={"error": repr(exc)[:300], "tries": tries}
        )

    @app.agent(topic, concurrency=1)
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            records = [
                Record(
                    topic=e.message.topic,
                    partition=e.message.partition,
                    offset=e.message.offset,
                    key=e.message.key,
                    value=e.message.value,
                )
                for e in events
            ]
            try:
                await retry_forever(
                    functools.partial(write, records),
                    max_backoff_s=settings.db_retry_max_backoff_s,
                    on_retry=on_retry,
                )
            except BaseException:
                # Never let faust acknowledge a batch that was not written.
                log.exception("unrecoverable batch failure; exiting without acknowledging")
                logging.shutdown()
                os._exit(70)

    @app.timer(interval=settings.orphan_check_every_s)
    async def report_orphans() -> None:
        try:
            async with engine.begin() as conn:
                marked = await batches.mark_orphans(conn, older_than_s=settings.orphan_after_s)
            if marked:
                log.warning("reversals orphaned: their orders never arrived", extra={"n": marked})
        except Exception as exc:  # retried at the next tick
            log.warning("orphan check failed", extra={"error": repr(exc)[:200]})

    if web_port > 0:

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json({"status": "ok"})

    @app.on_before_shutdown.connect
    async def close_resources(sender: Any, **_: Any) -> None:
        producer = dlq_producer.pop("p", None)
        if producer is not None:
            await producer.stop()
        await engine.dispose()

    return app
