"""The ingest worker: a stateless faust agent on ``punchline.ingest.v1``.

Each ``take_events`` batch goes through :class:`workers.sink.BatchWriter` in
one Postgres transaction that also stores the partitions' next offsets. The
agent body never lets an exception out (faust 0.15 would ack the batch
anyway): transient failures are retried with backoff, holding the partitions
back; anything else ends the process at once, without acknowledging.

SIGTERM: faust stops the flow, waits for the streams to acknowledge what they
took, then cancels the agent. A batch being written is shielded from that
cancellation: it commits (or the process exits without acknowledging), then
the agent stops, the consumer closes and the engine is disposed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaProducer
from faust.types import TP
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, StatementError

from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import batches, refusals
from schemas.events import DeadLetter
from workers import metrics
from workers.messages import Record
from workers.retry import retry_forever
from workers.rulesets import RuleSetCache
from workers.sink import BatchWriter
from workers.transport import PunchlineApp

log = logging.getLogger("punchline.worker")

LAG_EVERY_S = 5.0
READY_TIMEOUT_S = 2.0
SHUTDOWN_GRACE_S = 25.0  # a batch still retrying this long after SIGTERM is left unacknowledged
LOGGED_IDS = 50  # external ids listed per batch log line


def describe_error(exc: BaseException) -> str:
    """The error without SQL parameters: they can hold customer emails."""
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return f"{type(exc).__name__}({type(exc.orig).__name__}, sqlstate={code})"
    if isinstance(exc, StatementError):
        return f"{type(exc).__name__}({type(exc.orig).__name__})"
    return repr(exc)[:300]


def letter_ids(value: str) -> dict[str, str | None]:
    """``org_id`` and ``external_id`` of a dead letter, when its body still has them."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return {"org_id": None, "external_id": None}
    ids: dict[str, str | None] = {}
    for field in ("org_id", "external_id"):
        raw = data.get(field)
        ids[field] = raw[:128] if isinstance(raw, str) else None
    return ids


async def write_through_shutdown(write: Callable[[], Awaitable[None]]) -> None:
    """Run one batch write to its end even when the agent is cancelled meanwhile.

    Cancelling a transaction halfway would roll it back, and faust acknowledges the
    batch once the agent body stops. The write runs in its own task; a cancellation
    waits for it (up to ``SHUTDOWN_GRACE_S``) and is then re-raised. A write that is
    cancelled itself, or still not done after the grace, raises so that the caller
    exits without acknowledging.
    """
    task = asyncio.ensure_future(write())
    cancelled = False
    deadline: float | None = None
    while True:
        try:
            if deadline is None:
                await asyncio.shield(task)
            else:
                await asyncio.wait_for(
                    asyncio.shield(task), timeout=max(0.0, deadline - time.monotonic())
                )
            break
        except asyncio.CancelledError:
            if task.cancelled():
                raise RuntimeError("the batch write was cancelled") from None
            if not cancelled:
                cancelled = True
                deadline = time.monotonic() + SHUTDOWN_GRACE_S
                log.info("stopping: finishing the batch in progress")
        except TimeoutError:
            task.cancel()
            raise RuntimeError("the batch did not commit within the shutdown grace") from None
    if cancelled:
        raise asyncio.CancelledError


def build_app(settings: Settings) -> faust.App:
    web_port = settings.worker_health_port
    app = PunchlineApp(
        settings.consumer_group,
        settings=settings,
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
            # Never the key or value: the key holds the customer ref, which can be an email.
            log.warning(
                "dead-lettered message",
                extra={
                    **letter_ids(letter.value),
                    "reason": letter.reason[:200],
                    "partition": letter.partition,
                    "offset": letter.offset,
                },
            )

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
        started = time.perf_counter()
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
        if outcome.refused:
            log.warning(
                "events answered 503 at the edge reached the log anyway; not applied",
                extra={"n": outcome.refused},
            )
        committed_at = datetime.now(UTC)
        metrics.record_batch(
            size=len(records),
            seconds=time.perf_counter() - started,
            applied=outcome.applied,
            duplicates=outcome.duplicates,
            rejected=outcome.rejected,
            dead=outcome.dead_lettered,
            redelivered=outcome.redelivered,
            refused=outcome.refused,
            settled=outcome.applied_events,
            committed_at=committed_at,
        )
        if log.isEnabledFor(logging.DEBUG):
            settled = outcome.applied_events
            log.debug(
                "batch written",
                extra={
                    "size": len(records),
                    "applied": outcome.applied,
                    "duplicates": outcome.duplicates,
                    "rejected": outcome.rejected,
                    "dead_lettered": outcome.dead_lettered,
                    "redelivered": outcome.redelivered,
                    "refused": outcome.refused,
                    "org_id": sorted({str(e.org_id) for e in settled})[:LOGGED_IDS],
                    "external_id": [e.tx_external_id for e in settled[:LOGGED_IDS]],
                    "ids_truncated": max(0, len(settled) - LOGGED_IDS),
                },
            )

    def on_retry(exc: BaseException, tries: int) -> None:
        metrics.batch_retries.inc()
        log.warning(
            "batch write failed; retrying", extra={"error": describe_error(exc), "tries": tries}
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
                await write_through_shutdown(
                    functools.partial(
                        retry_forever,
                        functools.partial(write, records),
                        max_backoff_s=settings.db_retry_max_backoff_s,
                        on_retry=on_retry,
                    )
                )
            except asyncio.CancelledError:
                raise  # shutdown, after this batch committed: faust may acknowledge it
            except BaseException as exc:
                # Never let faust acknowledge a batch that was not written.
                log.error(
                    "unrecoverable batch failure; exiting without acknowledging",
                    extra={
                        "error": describe_error(exc),
                        "traceback": "".join(traceback.format_tb(exc.__traceback__))[-4000:],
                    },
                )
                logging.shutdown()
                os._exit(70)

    @app.timer(interval=settings.orphan_check_every_s)
    async def report_orphans() -> None:
        try:
            async with engine.begin() as conn:
                marked = await batches.mark_orphans(conn, older_than_s=settings.orphan_after_s)
                await refusals.prune(conn, older_than_s=settings.refusal_retention_s)
            if marked:
                log.warning("reversals orphaned: their orders never arrived", extra={"n": marked})
        except Exception as exc:  # retried at the next tick
            log.warning("orphan check failed", extra={"error": describe_error(exc)})

    async def partition_lag() -> dict[int, int | None]:
        consumer = app.consumer
        lag: dict[int, int | None] = {}
        for tp in consumer.assignment():
            if tp.topic != settings.ingest_topic:
                continue
            highwater: int | None = None
            position: int | None = None
            try:
                highwater = consumer.highwater(tp)
                position = await consumer.position(tp)
            except Exception:  # not fetched yet, or revoked meanwhile
                highwater = None
            lag[tp.partition] = (
                highwater - position if highwater is not None and position is not None else None
            )
        return lag

    @app.timer(interval=LAG_EVERY_S)
    async def report_lag() -> None:
        try:
            metrics.set_lag(await partition_lag())
        except Exception as exc:  # e.g. mid-rebalance; the next tick tries again
            log.debug("lag unavailable", extra={"error": describe_error(exc)})

    async def database_ready() -> bool:
        async with engine.connect() as conn:
            return bool((await conn.execute(text("SELECT 1"))).scalar_one() == 1)

    async def broker_ready() -> tuple[bool, int]:
        try:
            assigned = len(app.consumer.assignment())
        except Exception:
            assigned = 0
        if assigned:
            return True, assigned
        producer = dlq_producer.get("p")
        if producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            if "p" in dlq_producer:  # another caller started one meanwhile
                await producer.stop()
                producer = dlq_producer["p"]
            else:
                dlq_producer["p"] = producer
        await producer.partitions_for(settings.ingest_topic)
        return True, 0

    async def probe(check: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        try:
            return True, await asyncio.wait_for(check(), timeout=READY_TIMEOUT_S)
        except Exception as exc:
            return False, describe_error(exc)

    if web_port > 0:

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json({"status": "ok"})

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            db_ok, db = await probe(database_ready)
            broker_ok, broker = await probe(broker_ready)
            body: dict[str, Any] = {
                "status": "ready" if db_ok and broker_ok else "not ready",
                "database": "ok" if db_ok and db else db,
                "broker": "ok" if broker_ok else broker,
                "assigned_partitions": broker[1] if broker_ok else 0,
            }
            return web.json(body, status=200 if db_ok and broker_ok else 503)

        @app.page("/metrics")
        async def metrics_page(web: Any, request: Any) -> Any:
            body, content_type = metrics.render()
            # aiohttp refuses a charset in content_type=; the header carries it whole.
            return web.bytes(body, headers={"Content-Type": content_type})

    @app.on_before_shutdown.connect
    async def close_resources(sender: Any, **_: Any) -> None:
        producer = dlq_producer.pop("p", None)
        if producer is not None:
            await producer.stop()
        await engine.dispose()

    return app
