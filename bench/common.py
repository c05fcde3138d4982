"""What every bench script shares: the command line, the result file, tables, CPU, profiles.

The contract of a bench script: ``python bench/<name>.py [--quick] [--json-out PATH]``
prints one markdown section (``##`` heading, a paragraph of method, a table, a verdict
against the target) and writes ``bench/results/<name>.json`` shaped
``{"name", "machine", "date", "params", "rows", "summary"}``. ``summary["targets"]``
lists ``{"target", "measured", "met"}`` for the report's targets table.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"
PY_SPY = Path(sys.executable).with_name("py-spy")


def parse_args(name: str, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"bench/bench_{name}.py", description=description)
    parser.add_argument("--quick", action="store_true", help="short run (smoke test, noisy)")
    parser.add_argument(
        "--json-out",
        type=Path,
        default=RESULTS_DIR / f"{name}.json",
        help=f"where the JSON result goes (default bench/results/{name}.json)",
    )
    return parser.parse_args()


# -- machine -----------------------------------------------------------------------


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info(postgres_version: str | None = None) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "postgres_version": postgres_version,
        "load_average": load_average(),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def postgres_version(admin_dsn: str) -> str | None:
    from punchline.devstack import run_sync

    async def query() -> str:
        import asyncpg

        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return run_sync(query, timeout=15)
    except Exception:
        return None


# -- numbers and tables ------------------------------------------------------------


def percentiles(values: Sequence[float], points: Iterable[float] = (50, 90, 99)) -> dict[str, Any]:
    """Nearest-rank percentiles plus max and count (``None`` when empty)."""
    ordered = sorted(values)
    out: dict[str, Any] = {"count": len(ordered)}
    for p in points:
        key = f"p{p:g}"
        if not ordered:
            out[key] = None
            continue
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        out[key] = round(ordered[rank - 1], 2)
    out["max"] = round(ordered[-1], 2) if ordered else None
    return out


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> str:
    """A markdown table; ``align`` is one char per column: l or r (default r after col 1)."""
    headers = list(headers)
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float | None) -> str:
    """A latency for prose: 3 significant-ish digits."""
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


# -- results -------------------------------------------------------------------------


@dataclass
class Report:
    name: str
    params: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    sections: dict[str, Any] = field(default_factory=dict)  # more top-level keys, after summary

    def target(self, target: str, measured: str, met: bool | None) -> None:
        self.summary.setdefault("targets", []).append(
            {"target": target, "measured": measured, "met": met}
        )

    def finish(self, markdown: str, json_out: Path) -> None:
        """Print the markdown section and write the JSON result."""
        self.machine.setdefault("load_average_end", load_average())
        self.summary["markdown"] = markdown
        self.summary["duration_s"] = round(time.time() - self.started, 1)
        body = {
            "name": self.name,
            "machine": self.machine,
            "date": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "params": self.params,
            "rows": self.rows,
            "summary": self.summary,
            **self.sections,
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(body, indent=2, default=str) + "\n")
        print(markdown, flush=True)


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the markdown section."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- CPU ---------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds used by process trees (a process and its children) in a window.

    Also the seconds their threads spent runnable but waiting for a CPU (the
    scheduler's run-queue delay from /proc/<pid>/task/*/schedstat): on a shared
    machine that says how much a process was starved by others. Divide either by
    the window's wall seconds for cores: 1.0 is one core's worth.
    """

    def __init__(self, pids: dict[str, int | None]) -> None:
        self._pids = {k: v for k, v in pids.items() if v is not None}
        self._start: dict[str, tuple[float, float]] = {}

    @staticmethod
    def _tree(pid: int) -> tuple[float, float]:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0, 0.0
        cpu = wait = 0.0
        for proc in procs:
            try:
                t = proc.cpu_times()
                cpu += t.user + t.system
            except psutil.Error:
                continue
            for stat in Path(f"/proc/{proc.pid}/task").glob("*/schedstat"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    wait += int(stat.read_text().split()[1]) / 1e9
        return cpu, wait

    def start(self) -> CpuMeter:
        self._start = {k: self._tree(pid) for k, pid in self._pids.items()}
        return self

    def stop(self) -> tuple[dict[str, float], dict[str, float]]:
        """(CPU seconds, run-queue wait seconds) per process tree since ``start()``."""
        cpu: dict[str, float] = {}
        wait: dict[str, float] = {}
        for k, pid in self._pids.items():
            c, w = self._tree(pid)
            cpu[k] = round(c - self._start[k][0], 3)
            wait[k] = round(max(0.0, w - self._start[k][1]), 3)
        return cpu, wait


# -- profiles ------------------------------------------------------------------------

_ROOT_FRAMES = re.compile(
    r"^(<module> |main \(punchline/cli|_api \(punchline/cli|_worker \(punchline/cli|_run_code |"
    r"_run_module_as_main |asyncio_run |run \(uvicorn/|Runner\.run |Server\.run |"
    r"Server\.serve |BaseEventLoop\.run_|Worker\.execute_from_commandline |"
    r"Thread\._bootstrap)"
)
_PROJECT = ("ingest_api/", "punchline/", "workers/", "schemas/", "rules/")
_IDLE_LEAVES = frozenset(
    {"Condition.wait", "Event.wait", "Thread.join", "Semaphore.acquire", "select", "poll"}
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short_file(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.rsplit("/lib/python3", 1)[-1].split("/", 1)[-1] if "/lib/python3" in path else path


def _package(path: str) -> str:
    short = _short_file(path)
    if short.startswith("<"):
        return short
    head = short.split("/", 1)[0]
    return head.removesuffix(".py")


def start_profile(pid: int, seconds: float, label: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``py-spy record`` (non-blocking, 100 Hz, by function) on ``pid``."""
    out = Path(tempfile.mkstemp(prefix=f"pyspy-{label}-", suffix=".txt")[1])
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "100",
            "--nonblocking",
            "--function",
            "--threads",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(LOG_DIR / f"py-spy-{label}.log", "wb"),
    )
    return proc, out


def finish_profile(
    proc: subprocess.Popen[bytes],
    out: Path,
    seconds: float,
    top: int = 15,
    summarise: Callable[[str, float, int], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Wait for py-spy and summarise its collapsed stacks (``summarise_profile`` by default)."""
    try:
        proc.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    try:
        raw = out.read_text()
    except OSError:
        raw = ""
    kept = LOG_DIR / out.name.rsplit("-", 1)[0].replace("pyspy-", "pyspy-raw-")
    kept = kept.with_suffix(".txt")
    with contextlib.suppress(OSError):
        out.replace(kept)  # collapsed stacks, for flamegraph.pl or speedscope
    out.unlink(missing_ok=True)
    summary = (summarise or summarise_profile)(raw, seconds, top)
    summary["raw_stacks"] = str(kept.relative_to(ROOT)) if kept.exists() else None
    return summary


def summarise_profile(raw: str, seconds: float, top: int = 15) -> dict[str, Any]:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        thread = "MainThread"
        if frames and frames[0].startswith("thread ("):
            name = frames[0].split("): ", 1)[-1]
            thread = re.sub(r"[-_]?\d+(_\d+)?$", "", name) or name
        # py-spy's first frame may be the thread name ("process 123:…" / "thread …").
        frames = [f for f in frames if _FRAME.match(f)]
        if not frames:
            continue
        leaf_match = _FRAME.match(frames[-1])
        assert leaf_match is not None
        if thread != "MainThread" and leaf_match["func"] in _IDLE_LEAVES:
            # py-spy's idle detection misses pool threads parked in Condition.wait.
            idle += count
            continue
        threads[thread] += count
        total += count
        names = []
        for frame in frames:
            m = _FRAME.match(frame)
            assert m is not None
            names.append(f"{m['func']} ({_short_file(m['file'])})")
        self_time[names[-1]] += count
        leaf = _FRAME.match(frames[-1])
        assert leaf is not None
        packages[_package(leaf["file"])] += count
        for name in set(names):
            inclusive[name] += count

    def pct(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    # The server loop and the middleware chain hold ~everything inclusive: leave those out,
    # and the process's entry frames, whatever their share.
    def interesting(name: str, n: int) -> bool:
        return pct(n) < 50 and not _ROOT_FRAMES.match(name)

    ranked = inclusive.most_common()
    return {
        "samples": total,
        "idle_thread_samples_dropped": idle,
        "busy_fraction": round(total / (seconds * 100), 2) if seconds else None,
        "top_self": [{"function": k, "pct": pct(v)} for k, v in self_time.most_common(top)],
        "top_inclusive": [{"function": k, "pct": pct(v)} for k, v in ranked if interesting(k, v)][
            :top
        ],
        "top_inclusive_project": [
            {"function": k, "pct": pct(v)}
            for k, v in ranked
            if interesting(k, v) and k.rsplit("(", 1)[-1].startswith(_PROJECT)
        ][:top],
        "by_package_self": [{"package": k, "pct": pct(v)} for k, v in packages.most_common(12)],
        "by_thread": [{"thread": k, "pct": pct(v)} for k, v in threads.most_common(6)],
    }


def profile_markdown(title: str, profile: dict[str, Any], top: int = 10) -> str:
    if not profile.get("samples"):
        return f"{title}: py-spy collected no samples."
    lines = [
        f"{title}: {profile['samples']:,} samples at 100 Hz "
        f"(process busy {100 * (profile['busy_fraction'] or 0):.0f}% of one core).",
        "",
        "Samples by thread: "
        + ", ".join(f"{t['thread']} {t['pct']}%" for t in profile.get("by_thread", []))
        + ". Self time by package: "
        + ", ".join(f"{p['package']} {p['pct']}%" for p in profile["by_package_self"][:8])
        + ".",
        "",
        "Inclusive time, any code (< 50%): "
        + ", ".join(
            f"`{i['function']}` {i['pct']}%"
            for i in profile["top_inclusive"][:top]
            if not i["function"].rsplit("(", 1)[-1].startswith(_PROJECT)
        )
        + ".",
        "",
        md_table(
            ["top functions (self time)", "%", "project code (inclusive time, < 50%)", "%"],
            [
                (
                    f"`{s['function']}`" if s else "",
                    s["pct"] if s else None,
                    f"`{i['function']}`" if i else "",
                    i["pct"] if i else None,
                )
                for s, i in _zip_longest(
                    profile["top_self"][:top], profile["top_inclusive_project"][:top]
                )
            ],
            align="lrlr",
        ),
    ]
    return "\n".join(lines)


def _zip_longest(a: list[Any], b: list[Any]) -> list[tuple[Any, Any]]:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(n)]
