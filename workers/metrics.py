"""Prometheus metrics of the ingest worker: outcomes, batches, latency, lag.

Names are constants so dashboards and tests refer to one spelling. Labels never
carry order data (no org, external id or customer): only bounded values such as
a partition number. The worker is one process, so the default registry is served
as is on the worker's ``/metrics`` page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from schemas.events import IngestEvent

ORDERS_APPLIED: Final = "punchline_worker_orders_applied"
ORDERS_DUPLICATE: Final = "punchline_worker_orders_duplicate"
ORDERS_REJECTED: Final = "punchline_worker_orders_rejected"
DEAD_LETTERED: Final = "punchline_worker_dead_lettered"
REDELIVERED_SKIPPED: Final = "punchline_worker_redelivered_skipped"
REFUSED_SKIPPED: Final = "punchline_worker_refused_skipped"
BATCH_SIZE: Final = "punchline_worker_batch_size"
BATCH_SECONDS: Final = "punchline_worker_batch_transaction_seconds"
ACCEPT_TO_APPLIED_SECONDS: Final = "punchline_worker_accept_to_applied_seconds"
BATCH_RETRIES: Final = "punchline_worker_batch_write_retries"
CONSUMER_LAG: Final = "punchline_worker_consumer_lag"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)

orders_applied = Counter(ORDERS_APPLIED, "Events applied (a transaction with status applied).")
orders_duplicate = Counter(
    ORDERS_DUPLICATE, "Client duplicates: an external_id already applied, sent again."
)
orders_rejected = Counter(ORDERS_REJECTED, "Events recorded as rejected (a domain outcome).")
dead_lettered = Counter(DEAD_LETTERED, "Poison messages produced to the dead-letter topic.")
redelivered_skipped = Counter(
    REDELIVERED_SKIPPED, "Records below the stored offset, skipped as redeliveries."
)
refused_skipped = Counter(
    REFUSED_SKIPPED, "Events the edge answered 503 for that reached the log anyway; not applied."
)
batch_size = Histogram(
    BATCH_SIZE, "Records per batch handed to the writer.", buckets=_BATCH_SIZE_BUCKETS
)
batch_seconds = Histogram(
    BATCH_SECONDS,
    "Time to write and commit one batch, retries included.",
    buckets=_LATENCY_BUCKETS,
)
accept_to_applied_seconds = Histogram(
    ACCEPT_TO_APPLIED_SECONDS,
    "From an event's accepted_at (the edge) to the commit of the batch that settled it.",
    buckets=_LATENCY_BUCKETS,
)
batch_retries = Counter(BATCH_RETRIES, "Batch writes that failed transiently and were retried.")
consumer_lag = Gauge(
    CONSUMER_LAG,
    "Highwater minus consumer position, per assigned partition of the ingest topic.",
    ["partition"],
)


_lag_partitions: set[int] = set()


def record_batch(
    *,
    size: int,
    seconds: float,
    applied: int,
    duplicates: int,
    rejected: int,
    dead: int,
    redelivered: int,
    refused: int = 0,
    settled: Iterable[IngestEvent],
    committed_at: datetime,
) -> None:
    """Record one committed batch; call it after the commit, never before."""
    batch_size.observe(size)
    batch_seconds.observe(seconds)
    orders_applied.inc(applied)
    orders_duplicate.inc(duplicates)
    orders_rejected.inc(rejected)
    dead_lettered.inc(dead)
    redelivered_skipped.inc(redelivered)
    refused_skipped.inc(refused)
    for event in settled:
        accept_to_applied_seconds.observe(
            max(0.0, (committed_at - event.accepted_at).total_seconds())
        )


def set_lag(lag: Mapping[int, int | None]) -> None:
    """Replace the lag gauge with these partitions; ``None`` (unknown) is left out."""
    known = {p: v for p, v in lag.items() if v is not None}
    for gone in _lag_partitions - known.keys():  # revoked since the last tick
        consumer_lag.remove(str(gone))
    _lag_partitions.clear()
    _lag_partitions.update(known)
    for partition, value in known.items():
        consumer_lag.labels(str(partition)).set(max(0, value))


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
