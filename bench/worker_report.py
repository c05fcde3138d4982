"""The worker bench's summary (ratios, targets) and its markdown section.

``render`` takes the result as written to bench/results/worker.json, so a saved
result can be rendered again.
"""

from __future__ import annotations

from typing import Any

from common import md_table, verdict

TARGET_PER_CORE = 20_000
TARGET_VS_BASELINE = 10.0
TARGET_VS_RAW = 0.5


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["id"]: r for r in rows}
    w, raw = by["worker"], by["raw_insert"]
    # The baseline is the faster of its two runs: the ratio is then the conservative one.
    base = max(by["baseline_c8"], by["baseline_c1"], key=lambda r: r["orders_per_s"])
    per_core = w["orders_per_process_cpu_s"]
    vs_base = w["orders_per_s"] / base["orders_per_s"]
    vs_raw = w["orders_per_s"] / raw["orders_per_s"]
    return {
        "worker_orders_per_s": w["orders_per_s"],
        "worker_orders_per_worker_cpu_s": per_core,
        "worker_orders_per_cpu_s_with_pg": w["orders_per_cpu_s_with_pg"],
        "sink_orders_per_s": by["sink"]["orders_per_s"],
        "baseline_orders_per_s": base["orders_per_s"],
        "baseline_used": base["id"],
        "raw_insert_orders_per_s": raw["orders_per_s"],
        "ratio_worker_vs_baseline": round(vs_base, 2),
        "ratio_worker_vs_baseline_per_cpu_s": round(
            w["orders_per_cpu_s_with_pg"] / base["orders_per_cpu_s_with_pg"], 2
        ),
        "ratio_worker_vs_raw": round(vs_raw, 3),
        "ratio_worker_vs_raw_per_cpu_s": round(
            w["orders_per_cpu_s_with_pg"] / raw["orders_per_cpu_s_with_pg"], 3
        ),
        "ratio_sink_vs_raw": round(by["sink"]["orders_per_s"] / raw["orders_per_s"], 3),
        # bench/common.py's shape, read by bench/run_all.py
        "targets": [
            {
                "target": f"worker ≥ {TARGET_PER_CORE:,} orders/s per core",
                "measured": f"{per_core:,} orders per worker CPU-second",
                "met": per_core >= TARGET_PER_CORE,
            },
            {
                "target": f"worker ≥ {TARGET_VS_BASELINE:.0f}× the per-order baseline",
                "measured": f"{vs_base:.2f}×",
                "met": vs_base >= TARGET_VS_BASELINE,
            },
            {
                "target": f"worker ≥ {TARGET_VS_RAW:.0%} of the raw insert limit",
                "measured": f"{vs_raw:.0%}",
                "met": vs_raw >= TARGET_VS_RAW,
            },
        ],
        "target_details": {
            "per_core": {
                "target": TARGET_PER_CORE,
                "measured": per_core,
                "verdict": verdict(per_core >= TARGET_PER_CORE),
            },
            "vs_baseline": {
                "target": TARGET_VS_BASELINE,
                "measured": round(vs_base, 2),
                "verdict": verdict(vs_base >= TARGET_VS_BASELINE),
            },
            "vs_raw": {
                "target": TARGET_VS_RAW,
                "measured": round(vs_raw, 3),
                "verdict": verdict(vs_raw >= TARGET_VS_RAW),
            },
        },
    }


def bp_verdict(bp: dict[str, Any]) -> str:
    if not bp["conclusive"]:
        return "inconclusive, the backlog left is smaller than the prefetch bound"
    if bp["bounded"]:
        return (
            f"bounded: RSS plateaus (+{bp['late_growth_mb']} MB over the second half of the"
            f" window) while {bp['backlog_unconsumed_mb_at_end']} MB is still unconsumed"
        )
    return f"NOT bounded: RSS still growing (+{bp['late_growth_mb']} MB in the second half)"


def render(result: dict[str, Any]) -> str:
    """The markdown section of a result shaped as bench/results/worker.json."""
    p, s, x, m = result["params"], result["summary"], result["extra"], result["machine"]
    bp, rows = result["memory"], result["rows"]
    statements = list(x["sink_statements_ms_per_batch"].items())
    t = s["target_details"]
    out = [
        "## Worker throughput",
        "",
        f"Orders of 3 lines against a 20-rule set (1 stamp card, 3 tiers), {p['customers']:,}"
        f" customers, real Postgres {m['postgres']} and Tansu on one"
        f" {m['cpu_count']}-core machine (load average"
        f" {m['loadavg_start'][0]:.2f} at start, shared with other work)."
        f" (W): pre-produced IngestEvents (the edge's bytes) drained by one"
        " `punchline worker` process, timed from its first committed batch over"
        f" {p['orders']:,} orders or {p['w_window_s']:.0f} s, whichever comes first;"
        " (W-sink): BatchWriter in-process on fetched records, no Kafka; (a): the same"
        " planning code, one transaction per order with per-row statements; (b): the rows"
        " the worker wrote, re-inserted by multi-row INSERT into the emptied tables. CPU"
        " columns are process CPU-seconds and those of the Postgres backends serving it.",
        "",
        md_table(
            [
                "run",
                "orders",
                "s",
                "orders/s",
                "process CPU-s",
                "PG CPU-s",
                "orders/process CPU-s",
                "orders/CPU-s incl. PG",
                "notes",
            ],
            [
                (
                    r["label"],
                    r["orders"],
                    r["seconds"],
                    r["orders_per_s"],
                    r["process_cpu_s"],
                    r["pg_cpu_s"],
                    r["orders_per_process_cpu_s"],
                    r["orders_per_cpu_s_with_pg"],
                    r["notes"],
                )
                for r in rows
            ],
            align="lrrrrrrrl",
        ),
        "",
        md_table(
            ["target", "measured", "verdict"],
            [
                (
                    f"≥ {TARGET_PER_CORE:,} orders/s per core (orders per worker CPU-second)",
                    f"{t['per_core']['measured']:,}",
                    t["per_core"]["verdict"],
                ),
                (
                    f"≥ {TARGET_VS_BASELINE:.0f}× the per-order baseline (wall; faster of"
                    f" its runs: {s['baseline_used']})",
                    f"{t['vs_baseline']['measured']:.2f}×",
                    t["vs_baseline"]["verdict"],
                ),
                (
                    f"≥ {TARGET_VS_RAW:.0%} of the raw insert limit (wall)",
                    f"{t['vs_raw']['measured']:.1%}",
                    t["vs_raw"]["verdict"],
                ),
            ],
            align="lrl",
        ),
        "",
        f"Per CPU-second (process + its Postgres backends): worker/baseline"
        f" {s['ratio_worker_vs_baseline_per_cpu_s']:.2f}×, worker/raw"
        f" {s['ratio_worker_vs_raw_per_cpu_s']:.0%}; in-process sink/raw"
        f" {s['ratio_sink_vs_raw']:.0%}. Worker peak RSS {rows[0]['peak_rss_mb']} MB.",
        "",
        f"**Where a (W-sink) batch of {p['batch_size']} spends its time** (ms per batch,"
        " wall): "
        + ", ".join(f"{k} {v}" for k, v in statements[:8])
        + f", … {statements[-1][0]} {statements[-1][1]}.",
        "",
        f"**Backpressure.** With {bp['slow_commit']}: small backlog"
        f" ({bp['small']['backlog_orders']:,} orders) peak RSS {bp['small']['rss_peak_mb']} MB;"
        f" large backlog ({bp['large']['backlog_orders']:,} orders,"
        f" {bp['large']['backlog_mb']} MB on the topic) peak RSS {bp['large']['rss_peak_mb']} MB"
        f" after {bp['large']['consumed_in_window']:,} consumed at"
        f" {bp['large']['orders_per_s_slow']:,} orders/s, {bp['backlog_unconsumed_mb_at_end']} MB"
        f" still unconsumed. Growth {bp['peak_growth_mb']} MB:"
        f" {bp_verdict(bp)} (bounds: faust stream buffer"
        f" {bp['config_bounds']['stream_buffer_maxsize']} events, aiokafka prefetch ≤"
        f" {bp['config_bounds']['aiokafka_prefetch_bound_mb']} MB).",
    ]
    prof = result.get("profile", {})
    if prof.get("available"):
        out += [
            "",
            f"**Profile** of the worker process (py-spy, {prof['samples']} active samples in"
            f" {prof.get('seconds', 0):.0f} s at 100 Hz, i.e. on CPU"
            f" {prof['samples'] / max(prof.get('seconds', 1) * 100, 1):.0%} of the time;"
            " own time):",
            "",
            md_table(
                ["function", "own %"],
                [(f"`{f['function']}`", f["pct"]) for f in prof["top_own"]],
            ),
            "",
            "By package (own): "
            + ", ".join(f"{b['package']} {b['pct']}%" for b in prof["by_package_own"][:8])
            + ". Inclusive: "
            + ", ".join(f"`{k}` {v}%" for k, v in prof["inclusive"].items())
            + "; stacks through "
            + ", ".join(f"{k} {v}%" for k, v in prof["inclusive_by_package"].items())
            + ".",
        ]
    return "\n".join(out)
