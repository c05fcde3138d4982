"""The worker bench's runs inside this process, against the same database.

- (W-sink): ``BatchWriter`` on already-fetched records (no Kafka), with the time
  spent in each SQL statement;
- (a) baseline: the same planning code, one Postgres transaction per order with
  per-row statements (asyncpg, prepared);
- (b) raw limit: the transaction and ledger rows (W) wrote, inserted again with
  multi-row INSERT (and COPY), in batches of the worker's batch size.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import baseline_sql as sql
import orjson
from sqlalchemy import event
from worker_probes import BackendCpu, statement_label
from worker_runs import BATCH, PARTITIONS, Ctx, throughput_row
from worker_workload import make_messages, rule_set

import rules
from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.db.repositories import orgs
from schemas.events import IngestEvent
from workers.messages import Record, decode
from workers.plan import BatchInputs, local_day, plan_batch
from workers.rulesets import RuleSetCache
from workers.sink import BatchWriter


async def phase_sink(ctx: Ctx) -> None:
    """(W-sink): decode + plan + write of already-fetched records, in-process."""
    p = ctx.params
    messages = make_messages(ctx.rng, ctx.org_id, ctx.codes, "s-", p.sink_orders)
    next_offset: dict[int, int] = defaultdict(int)
    records = []
    for key, value in messages:
        part = hash(key) % PARTITIONS
        records.append(Record("bench.sink", part, next_offset[part], key, value))
        next_offset[part] += 1
    started = time.perf_counter()
    for r in records:
        decode(r)
    decode_us = (time.perf_counter() - started) / len(records) * 1e6

    async def no_dead_letters(letters: Any) -> None:
        raise RuntimeError(f"unexpected dead letters: {letters[:1]}")

    engine = create_engine(Settings(database_url=ctx.url), pool_size=2)
    cache = RuleSetCache()
    writer = BatchWriter(
        engine,
        group="bench-sink",
        rule_sets=cache,
        versions=cache.versions,
        dead_letters=no_dead_letters,
    )
    pg = BackendCpu(ctx.probe, ctx.database)
    spent: Counter[str] = Counter()
    calls: Counter[str] = Counter()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("bench_t", []).append(time.perf_counter())

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        key = statement_label(statement)
        spent[key] += time.perf_counter() - conn.info["bench_t"].pop()
        calls[key] += 1

    try:
        await writer.write(records[:BATCH])  # warm-up: connections, rule set, statement cache
        spent.clear()
        calls.clear()
        await pg.mark()
        cpu0, t0 = time.process_time(), time.perf_counter()
        batch_ms = []
        done = BATCH
        for i in range(BATCH, len(records), BATCH):
            b0 = time.perf_counter()
            await writer.write(records[i : i + BATCH])
            batch_ms.append((time.perf_counter() - b0) * 1000)
            done = i + BATCH
            if time.perf_counter() - t0 > p.sink_s:
                break
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        pg_cpu = await pg.used()
    finally:
        await engine.dispose()
    orders = min(done, len(records)) - BATCH
    n_batches = len(batch_ms)
    in_sql = sum(spent.values())
    ctx.extra["sink_statements_ms_per_batch"] = {
        **{k: round(v * 1000 / n_batches, 1) for k, v in spent.most_common()},
        "(Python: decode, plan, build params; and COMMIT)": round(
            (seconds - in_sql) * 1000 / n_batches, 1
        ),
    }
    batch_ms.sort()
    ctx.rows.append(
        throughput_row(
            "sink",
            "(W-sink) BatchWriter in-process, no Kafka",
            orders,
            seconds,
            cpu,
            pg_cpu,
            f"batches of {BATCH}: median {batch_ms[len(batch_ms) // 2]:.0f} ms,"
            f" p95 {batch_ms[int(len(batch_ms) * 0.95)]:.0f} ms;"
            f" decode alone {decode_us:.0f} µs/order; time-boxed {p.sink_s:.0f}s",
        )
    )
    ctx.extra["sink_decode_us_per_order"] = round(decode_us, 1)


async def phase_baseline(ctx: Ctx, concurrency: int, limit_s: float, prefix: str) -> None:
    """(a): one transaction per order, per-row statements, ``concurrency`` connections."""
    p = ctx.params
    messages = make_messages(ctx.rng, ctx.org_id, ctx.codes, prefix, p.baseline_orders)
    org = (await orgs_row(ctx))[ctx.org_id]
    version = int(await ctx.probe.fetchval("SELECT max(version) FROM rule_sets"))
    compiled = rules.compile_rule_set(rule_set(), version)
    pool = await asyncpg.create_pool(ctx.dsn, min_size=concurrency, max_size=concurrency)
    outcomes: Counter[str] = Counter()

    async def one(conn: asyncpg.Connection, value: bytes) -> str:
        event = IngestEvent.model_validate(orjson.loads(value))  # what decode() does
        async with conn.transaction():
            customer = await sql.lock_customer(conn, event.org_id, event.customer.value)
            if customer is None:
                return "unknown_customer"
            wallets = await sql.lock_wallets(conn, customer.id)
            day = local_day(event, org.timezone)
            today = await sql.daily_points(conn, customer.id, day)
            plan = plan_batch(
                [event],
                BatchInputs(
                    orgs={org.id: org},
                    customers={(org.id, "code", customer.code): customer},
                    wallets={customer.id: wallets},
                    existing={},
                    daily={(customer.id, day): today},
                    rule_sets=lambda _org: compiled,
                    rule_version=lambda _org, _v: compiled,
                    lifetime={customer.id: (customer.lifetime_points, customer.tier)},
                ),
            )
            tx_id = await sql.insert_transaction(conn, plan.transactions[0])
            if tx_id is None:
                return "duplicate"
            for _, entry in plan.ledger:
                await sql.insert_ledger_row(conn, entry, tx_id)
            for delta in sorted(plan.wallet_deltas.values(), key=lambda d: d.asset):
                await sql.upsert_wallet(conn, delta)
            for progress in plan.customer_progress.values():
                await sql.update_customer(conn, progress)
            for _, coupon in plan.coupons:
                await sql.insert_coupon(conn, coupon, tx_id)
            for (cid, d), pts in plan.daily.items():
                await sql.upsert_daily(conn, cid, d, pts)
            for event_row in plan.outbox:
                await sql.insert_outbox_row(conn, event_row)
        return plan.transactions[0].status

    queue = iter(messages[: max(concurrency * 5, 1)])  # warm-up
    pg = BackendCpu(ctx.probe, ctx.database)

    async def run(items: Any, stop_at: float) -> None:
        async with pool.acquire() as conn:
            for _, value in items:
                if time.perf_counter() > stop_at:
                    return
                outcomes[await one(conn, value)] += 1

    try:
        await asyncio.gather(*(run(queue, float("inf")) for _ in range(concurrency)))
        outcomes.clear()
        queue = iter(messages[concurrency * 5 :])
        await pg.mark()
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(run(queue, t0 + limit_s) for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        pg_cpu = await pg.used()
    finally:
        await pool.close()
    orders = sum(outcomes.values())
    ctx.rows.append(
        throughput_row(
            f"baseline_c{concurrency}",
            f"(a) baseline: 1 tx per order, per-row SQL, concurrency {concurrency}",
            orders,
            seconds,
            cpu,
            pg_cpu,
            f"asyncpg prepared statements, time-boxed {limit_s:.0f}s; outcomes {dict(outcomes)}",
        )
    )


async def orgs_row(ctx: Ctx) -> dict[uuid.UUID, orgs.OrgRow]:
    row = await ctx.probe.fetchrow(
        "SELECT id, name, timezone, currency, verification_preset, negative_balance_policy,"
        " subscription_status FROM orgs WHERE id = $1",
        ctx.org_id,
    )
    return {ctx.org_id: orgs.OrgRow(*row)}


async def phase_raw(ctx: Ctx) -> None:
    """(b): the worker's transaction + ledger rows, inserted again, no rules."""
    txs, ledger = await sql.fetch_written(ctx.probe, "w-")
    by_ext: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in ledger:
        by_ext[row[5]].append(row)
    batches = []
    for i in range(0, len(txs), BATCH):
        chunk = txs[i : i + BATCH]
        batches.append((chunk, [r for t in chunk for r in by_ext.get(t[2], [])]))

    async def timed(
        label: str, ident: str, insert: Callable[[Any, Any, Any], Awaitable[None]], strip: bool
    ) -> None:
        await sql.truncate_written(ctx.probe)
        await ctx.probe.execute("VACUUM ANALYZE transactions, ledger_entries")
        conn = await asyncpg.connect(ctx.dsn)
        pg = BackendCpu(ctx.probe, ctx.database)
        try:
            await pg.mark()
            cpu0, t0 = time.process_time(), time.perf_counter()
            for chunk, rows in batches:
                await insert(conn, [t[1:] for t in chunk] if strip else chunk, rows)
            seconds = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            pg_cpu = await pg.used()
        finally:
            await conn.close()
        ctx.rows.append(
            throughput_row(
                ident,
                label,
                len(txs),
                seconds,
                cpu,
                pg_cpu,
                f"{len(ledger)} ledger rows, batches of {BATCH} orders, 1 tx per batch",
            )
        )

    await timed(
        "(b) raw limit: multi-row INSERT of the same rows, no rules",
        "raw_insert",
        sql.insert_batch_multirow,
        True,
    )
    await timed(
        "(b') raw COPY of the same rows (for reference)", "raw_copy", sql.insert_batch_copy, False
    )
