"""Probes of the worker bench: memory, CPU of the machine and of Postgres, profiles, SQL.

What ``common.CpuMeter`` does not cover: the Postgres backends serving the bench
database (they come and go, so they are sampled), the whole machine's busy time,
the RSS of a process tree, a py-spy summary by the worker's own functions and
packages, and a short name for each SQL statement the sink runs.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import baseline_sql as sql
import psutil

# -- CPU and memory -----------------------------------------------------------------------


def cpu_s(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def rss_mb(proc: psutil.Process) -> float:
    try:
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total / 2**20
    except psutil.Error:
        return 0.0


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (all cores, everyone's load)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class BackendCpu:
    """CPU seconds of the Postgres backends serving our database, between two marks."""

    def __init__(self, conn: asyncpg.Connection, database: str) -> None:
        self._conn = conn
        self._db = database
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}

    async def sample(self) -> None:
        for pid in await sql.backend_pids(self._conn, self._db):
            with contextlib.suppress(psutil.Error):
                self._last[pid] = cpu_s(psutil.Process(pid))

    async def mark(self) -> None:
        self._last = {}
        await self.sample()
        self._start = dict(self._last)

    async def used(self) -> float:
        await self.sample()
        return sum(v - self._start.get(pid, 0.0) for pid, v in self._last.items())


# -- py-spy ---------------------------------------------------------------------------

_PROJECT = {"workers", "rules", "punchline", "schemas", "ingest_api"}


def _frame(frame: str) -> tuple[str, str]:
    """'Cls.func (pkg/file.py:12)' → ('Cls.func (pkg/file.py)', 'pkg')."""
    name, _, where = frame.rpartition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    project = [p for p in parts if p in _PROJECT]
    if project:
        package = project[0]
    elif len(parts) > 1 and not path.startswith("/"):
        package = parts[0]
    else:
        package = "stdlib"
    return f"{name or frame} ({'/'.join(parts[-2:])})", package


def summarise_profile(raw: str, seconds: float, top: int = 10) -> dict[str, Any]:
    """Own and inclusive shares of py-spy's collapsed stacks (for ``finish_profile``)."""
    own: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    in_package: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread ("))]
        if not frames:
            continue
        total += count
        leaf, package = _frame(frames[-1])
        own[leaf] += count
        by_package[package] += count
        seen = set()
        for f in frames:
            name, pkg = _frame(f)
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
            if pkg not in seen:
                seen.add(pkg)
                in_package[pkg] += count
    if not total:
        return {"available": False, "samples": 0}

    def pct(n: int) -> float:
        return round(100.0 * n / total, 1)

    interesting = [
        "BatchWriter.write (workers/sink.py)",
        "BatchWriter._plan (workers/sink.py)",
        "BatchWriter._write_plan (workers/sink.py)",
        "plan_batch (workers/plan.py)",
        "evaluate (rules/engine.py)",
        "decode (workers/messages.py)",
        "local_day (workers/plan.py)",
        "_row (workers/plan.py)",
    ]
    return {
        "available": True,
        "samples": total,
        "note": "py-spy --nonblocking --function at 100 Hz, active (non-idle) samples only;"
        " own = leaf frame",
        "top_own": [{"function": f, "pct": pct(n)} for f, n in own.most_common(top)],
        "by_package_own": [{"package": p, "pct": pct(n)} for p, n in by_package.most_common(12)],
        "inclusive": {k: pct(inclusive[k]) for k in interesting if k in inclusive},
        "inclusive_by_package": {
            k: pct(in_package[k])
            for k in ("faust", "aiokafka", "sqlalchemy", "asyncpg", "pydantic", "rules")
            if k in in_package
        },
    }


# -- SQL statements ------------------------------------------------------------------


def statement_label(statement: str) -> str:
    """A short name for a SQL statement: verb and main table."""
    words = [w.lower().strip("(,") for w in statement.split()]
    if not words:
        return "?"
    verb = words[0]
    if verb == "insert" and len(words) > 2:
        return f"INSERT {words[2]}"
    if verb == "update" and len(words) > 1:
        return f"UPDATE {words[1]}"
    if verb == "select":
        tables = [
            words[i + 1]
            for i, w in enumerate(words[:-1])
            if w in ("from", "join") and not words[i + 1].startswith("unnest")
        ]
        return f"SELECT {tables[0] if tables else words[-1]}"
    return " ".join(words[:2])
