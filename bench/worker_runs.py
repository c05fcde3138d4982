"""The worker bench's sizes, shared state, and its runs of the real worker process.

- (W): one ``punchline worker`` process drains pre-produced IngestEvents;
  measured from its first committed batch, then py-spy on the orders after that;
- backpressure: the worker against a Postgres made slow, a small and a large
  backlog, RSS sampled over time.

The in-process runs ((W-sink), (a), (b)) are in ``worker_inprocess_runs``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import baseline_sql as sql
import psutil
from common import LOG_DIR, CpuMeter, finish_profile, start_profile
from stack import BenchStack, Service
from worker_probes import BackendCpu, machine_busy_s, rss_mb, summarise_profile
from worker_workload import make_messages, produce

from punchline.config import Settings
from punchline.devstack import log_tail
from workers.topics import ensure_topics

PARTITIONS = 12
BATCH = 500  # the worker's default batch size (Settings.batch_size)
WITHIN_S = Settings.model_fields["batch_within_s"].default  # and its default window


@dataclass(frozen=True)
class Params:
    customers: int
    orders: int  # measured window of (W): this many orders or w_window_s, whichever first
    w_window_s: float
    profile_orders: int  # produced after the window, drained under py-spy
    sink_orders: int
    sink_s: float  # time box of each (W-sink) run (at least one batch after the warm-up)
    baseline_orders: int
    baseline_s: float
    baseline1_s: float
    bp_small: int
    bp_large: int
    bp_window_s: float
    bp_sleep_s: float
    profile_s: float
    deadline_s: float  # hard bound on any one drain


FULL = Params(
    customers=100_000,
    orders=30_000,
    w_window_s=60.0,
    profile_orders=8_000,
    sink_orders=10_000,
    sink_s=25.0,
    baseline_orders=20_000,
    baseline_s=20.0,
    baseline1_s=6.0,
    bp_small=2_000,
    bp_large=120_000,
    bp_window_s=15.0,
    bp_sleep_s=1.0,
    profile_s=10.0,
    deadline_s=180.0,
)
QUICK = Params(
    customers=5_000,
    orders=4_000,
    w_window_s=6.0,
    profile_orders=1_500,
    sink_orders=2_000,
    sink_s=3.0,
    baseline_orders=1_500,
    baseline_s=3.0,
    baseline1_s=1.5,
    bp_small=500,
    bp_large=8_000,
    bp_window_s=4.0,
    bp_sleep_s=0.5,
    profile_s=3.0,
    deadline_s=60.0,
)


@dataclass
class Ctx:
    params: Params
    stack: BenchStack
    url: str  # SQLAlchemy (asyncpg) URL of the bench database
    dsn: str  # libpq DSN
    org_id: uuid.UUID
    codes: list[str]
    rng: random.Random
    probe: asyncpg.Connection
    rows: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return self.stack.db_name


def throughput_row(
    ident: str,
    label: str,
    orders: int,
    seconds: float,
    cpu_s: float,
    pg_cpu_s: float,
    notes: str,
    **more: Any,
) -> dict[str, Any]:
    """One row of the table: orders/s, and orders per CPU-second of the process and of PG."""
    return {
        "id": ident,
        "label": label,
        "orders": orders,
        "seconds": round(float(seconds), 3),
        "orders_per_s": round(orders / seconds),
        "process_cpu_s": round(float(cpu_s), 2),
        "pg_cpu_s": round(float(pg_cpu_s), 2),
        "orders_per_process_cpu_s": round(orders / max(cpu_s, 1e-9)),
        "orders_per_cpu_s_with_pg": round(orders / max(cpu_s + pg_cpu_s, 1e-9)),
        **more,
        "notes": notes,
    }


# -- the worker process ------------------------------------------------------------------


def _worker_overrides(tag: str) -> dict[str, Any]:
    """Settings of one worker run: its own topics and consumer group."""
    return {
        "topic_prefix": f"bench{tag}.",
        "consumer_group": f"bench-{tag}",
        "partitions": PARTITIONS,
        "session_timeout_s": 3.0,
        "batch_size": BATCH,
        "batch_within_s": WITHIN_S,
    }


def worker_settings(ctx: Ctx, tag: str) -> Settings:
    return Settings(
        database_url=ctx.url,
        kafka_bootstrap=ctx.stack.broker.bootstrap,
        worker_health_port=0,
        **_worker_overrides(tag),
    )


def start_worker(ctx: Ctx, tag: str) -> Service:
    """A worker process with the run's settings; progress is watched in its offsets."""
    return ctx.stack.start_worker(tag, health=False, **_worker_overrides(tag))


def _exited(worker: Service, during: str = "") -> RuntimeError:
    return RuntimeError(f"worker exited{during}:\n{log_tail(worker.log_path, 3000)}")


async def wait_until(
    check: Callable[[], Awaitable[bool]], limit_s: float, what: str, worker: Service | None = None
) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        if worker is not None and not worker.alive():
            raise _exited(worker, f" during {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done within {limit_s:.0f}s")
        await asyncio.sleep(0.1)


async def phase_worker(ctx: Ctx) -> None:
    """(W): the real worker process drains a pre-produced backlog."""
    p = ctx.params
    broker = ctx.stack.broker
    settings = worker_settings(ctx, "w")
    await ensure_topics(settings)
    total = p.orders + p.profile_orders
    messages = make_messages(ctx.rng, ctx.org_id, ctx.codes, "w-", total)
    produce_s = await produce(broker.bootstrap, settings.ingest_topic, messages)
    ctx.extra["produce"] = {
        "messages": total,
        "seconds": round(produce_s, 2),
        "per_s": round(total / produce_s),
        "avg_value_bytes": round(sum(len(v) for _, v in messages) / total),
    }
    del messages
    group = settings.consumer_group
    pg = BackendCpu(ctx.probe, ctx.database)
    worker = start_worker(ctx, "w")
    worker_ps = psutil.Process(worker.pid)
    meter = CpuMeter({"worker": worker.pid, "broker": broker.pid})
    launched = time.perf_counter()
    spy = None
    profile: dict[str, Any] = {"available": False}
    peak_rss = 0.0
    try:
        t0 = c0 = machine0 = 0.0
        first_commit_s = None
        window: dict[str, float] = {}
        deadline = time.monotonic() + p.deadline_s
        while True:
            done = await sql.consumed(ctx.probe, group)
            now = time.perf_counter()
            peak_rss = max(peak_rss, rss_mb(worker_ps))
            if first_commit_s is None and done > 0:
                first_commit_s = now - launched
                t0, c0 = now, done
                meter.start()
                machine0 = machine_busy_s()
                await pg.mark()
            elif (
                first_commit_s is not None
                and not window
                and (done >= p.orders or now - t0 >= p.w_window_s)
            ):
                cpu, _ = meter.stop()
                window = {
                    "orders": done - c0,
                    "seconds": now - t0,
                    "worker_cpu_s": cpu["worker"],
                    "pg_cpu_s": await pg.used(),
                    "broker_cpu_s": cpu.get("broker", 0.0),
                    "machine_busy_s": machine_busy_s() - machine0,
                }
                spy = start_profile(worker.pid, p.profile_s, "worker")
            elif first_commit_s is not None and not window:
                await pg.sample()
            if (done >= total or window) and (spy is None or spy[0].poll() is not None):
                break
            if not worker.alive():
                raise _exited(worker)
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker drained {done}/{total} within {p.deadline_s}s")
            await asyncio.sleep(0.1)
        if spy is not None:
            profile = finish_profile(*spy, p.profile_s, top=10, summarise=summarise_profile)
            if spy[0].returncode:
                ctx.extra["profile_error"] = log_tail(LOG_DIR / "py-spy-worker.log", 500)
    finally:
        ctx.stack.stop(worker)
        if spy is not None and spy[0].poll() is None:
            spy[0].kill()
    ctx.extra["profile"] = {**profile, "seconds": p.profile_s}
    ctx.extra["worker_statuses"] = await sql.status_counts(ctx.probe, "w-")
    ctx.extra["worker_ledger_rows"] = await sql.row_count(ctx.probe, "ledger_entries", "w-")
    ctx.extra["worker_first_commit_s"] = round(first_commit_s or 0.0, 2)
    orders = int(window["orders"])
    ctx.rows.append(
        throughput_row(
            "worker",
            "(W) worker process, Kafka → Postgres",
            orders,
            window["seconds"],
            window["worker_cpu_s"],
            window["pg_cpu_s"],
            f"1 worker, {PARTITIONS} partitions, take({BATCH}, within={WITHIN_S}s);"
            f" first commit {first_commit_s or 0:.1f}s after launch (excluded)",
            broker_cpu_s=round(window["broker_cpu_s"], 2),
            machine_busy_s=round(window["machine_busy_s"], 2),
            peak_rss_mb=round(peak_rss, 1),
        )
    )


# -- backpressure ---------------------------------------------------------------------------


async def phase_backpressure(ctx: Ctx) -> None:
    """The worker against a slow Postgres: a small and a large backlog; RSS over time."""
    p = ctx.params
    await sql.install_slow_commits(ctx.probe, p.bp_sleep_s)
    runs: dict[str, Any] = {}
    try:
        for tag, count in (("bps", p.bp_small), ("bpl", p.bp_large)):
            runs[tag] = await _slow_run(ctx, tag, count)
    finally:
        await sql.remove_slow_commits(ctx.probe)
    ctx.extra["backpressure"] = {
        **memory_verdict(runs["bps"], runs["bpl"]),
        "slow_commit": f"pg_sleep({p.bp_sleep_s}) per INSERT INTO transactions statement",
        "config_bounds": {
            "stream_buffer_maxsize": max(4096, BATCH * 4),
            "max_partition_fetch_bytes": 4 * 2**20,
            "partitions": PARTITIONS,
            "aiokafka_prefetch_bound_mb": PARTITIONS * 4,
        },
    }


async def _slow_run(ctx: Ctx, tag: str, count: int) -> dict[str, Any]:
    """A backlog of ``count`` orders, drained for a window against the slow commits."""
    p = ctx.params
    settings = worker_settings(ctx, tag)
    await ensure_topics(settings)
    messages = make_messages(ctx.rng, ctx.org_id, ctx.codes, f"{tag}-", count)
    backlog_mb = sum(len(k) + len(v) for k, v in messages) / 2**20
    await produce(ctx.stack.broker.bootstrap, settings.ingest_topic, messages)
    del messages
    group = settings.consumer_group
    worker = start_worker(ctx, tag)
    worker_ps = psutil.Process(worker.pid)
    samples: list[tuple[float, float, int]] = []
    started = time.perf_counter()

    async def consumed_any() -> bool:
        return await sql.consumed(ctx.probe, group) > 0

    try:
        await wait_until(consumed_any, p.deadline_s, f"first slow batch ({tag})", worker)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < p.bp_window_s:
            done = await sql.consumed(ctx.probe, group)
            samples.append((time.perf_counter() - started, rss_mb(worker_ps), done))
            if done >= count:
                break
            if not worker.alive():
                raise _exited(worker)
            await asyncio.sleep(0.25)
    finally:
        ctx.stack.stop(worker)
    first, last = samples[0], samples[-1]
    rate = (last[2] - first[2]) / max(last[0] - first[0], 1e-9)
    step = max(1, len(samples) // 10)
    return {
        "backlog_orders": count,
        "backlog_mb": round(backlog_mb, 1),
        "consumed_in_window": last[2],
        "orders_per_s_slow": round(rate),
        "rss_first_mb": round(first[1], 1),
        "rss_peak_mb": round(max(s[1] for s in samples), 1),
        "rss_last_mb": round(last[1], 1),
        "series": [[round(t, 1), round(r, 1), c] for t, r, c in samples[::step]],
    }


def memory_verdict(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """Bounded when RSS plateaus while more is left on the topic than the worker may prefetch.

    Unbounded reading would make RSS keep growing while the backlog lasts; a plateau
    in the second half of the window, with more left on the topic than the consumer
    may prefetch (partitions x max fetch size), means it stopped fetching:
    backpressure. The plateau's height is the prefetch as Python objects.
    """
    growth = large["rss_peak_mb"] - small["rss_peak_mb"]
    left = large["backlog_mb"] * (1 - large["consumed_in_window"] / large["backlog_orders"])
    series = large["series"]
    half = series[len(series) // 2 :] or series
    late_growth = max(r for _, r, _ in half) - half[0][1]
    conclusive = left > PARTITIONS * 4
    return {
        "small": small,
        "large": large,
        "peak_growth_mb": round(growth, 1),
        "late_growth_mb": round(late_growth, 1),
        "backlog_unconsumed_mb_at_end": round(left, 1),
        "conclusive": conclusive,
        "bounded": conclusive and late_growth < 5.0,
    }
