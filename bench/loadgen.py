"""A load generator for the bench scripts, run as its own process.

Raw asyncio HTTP/1.1 on keep-alive connections (uvloop when installed): request
bytes are pre-built from a template, responses are read by Content-Length, so a
request costs the generator a few tens of µs, far less than httpx. The
generator's own CPU use is reported (``cpu_cores``), and ``serve`` starts a
trivial server that answers every request at once, to measure the generator's
ceiling.

Modes:

- ``--mode closed``: ``--concurrency`` connections, each sending its next
  request when the previous answer arrives; stops after ``--requests`` or
  ``--duration`` seconds. Latency: send → full answer.
- ``--mode open``: a fixed offered ``--rate`` for ``--duration`` seconds. Sends are
  scheduled on a timer and handed to a pool of ``--concurrency`` connections;
  latency runs from the *scheduled* time, so a stalled server is not hidden by
  the generator waiting for it (coordinated omission).

Workloads: ``order`` (POST /v1/orders), ``batch`` (POST /v1/orders:batch with
``--batch-size`` orders), ``redeem`` (POST /v1/redeem of ``--value`` points),
``get`` (GET ``--path``). External ids are ``<prefix>-<n>`` and unique per run.

Prints one JSON object: count, ok, errors by status (``422:insufficient_balance``,
``conn``, ``timeout``…), achieved rate, latency p50/p90/p99/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import resource
import sys
import time
from collections import Counter
from typing import Any, cast

ORDER = (
    '{{"customer":{{"type":"code","value":"{code}"}},"external_id":"{ext}",'
    '"occurred_at":"2026-11-02T09:30:00+00:00","currency":"EUR","lines":['
    '{{"sku":"CAP","name":"Cappuccino","category":"drinks","quantity":2,"unit_price_cents":350}},'
    '{{"sku":"CAKE","name":"Cake","category":"food","quantity":1,"unit_price_cents":450}}]}}'
)
REDEEM = (
    '{{"customer":{{"type":"code","value":"{code}"}},"card_type":"point",'
    '"value":{value},"external_id":"{ext}"}}'
)
_ERROR_CODE = re.compile(rb'"error"\s*:\s*"([a-z_]+)"')
_ACCEPTED = re.compile(rb'"accepted"\s*:\s*(\d+)')


class Workload:
    def __init__(self, args: argparse.Namespace) -> None:
        self.kind = args.workload
        self.host = args.url.split("://", 1)[-1].rstrip("/")
        self.key = args.key or ""
        self.prefix = args.prefix
        self.batch_size = args.batch_size
        self.value = args.value
        self.codes: list[str] = json.load(open(args.customers)) if args.customers else []
        self.rng = random.Random(args.seed)
        self.path = {
            "order": "/v1/orders",
            "batch": "/v1/orders:batch",
            "redeem": "/v1/redeem",
            "get": args.path,
        }[self.kind]
        self.seq = 0

    def _code(self) -> str:
        return self.codes[self.rng.randrange(len(self.codes))]

    def _ext(self) -> str:
        self.seq += 1
        return f"{self.prefix}-{self.seq}"

    def request(self) -> bytes:
        if self.kind == "get":
            return (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nX-Api-Key: {self.key}\r\n\r\n"
            ).encode()
        if self.kind == "order":
            body = ORDER.format(code=self._code(), ext=self._ext())
        elif self.kind == "redeem":
            body = REDEEM.format(code=self._code(), ext=self._ext(), value=self.value)
        else:
            items = ",".join(
                ORDER.format(code=self._code(), ext=self._ext()) for _ in range(self.batch_size)
            )
            body = f'{{"orders":[{items}]}}'
        data = body.encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nX-Api-Key: {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data

    def items(self) -> int:
        return self.batch_size if self.kind == "batch" else 1


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.send_lag: list[float] = []
        self.status: Counter[str] = Counter()
        self.ok = 0
        self.items_accepted = 0
        self.first_send: float | None = None
        self.last_done = 0.0

    def record(self, status: int, body: bytes, latency: float, batch: bool) -> None:
        self.latencies.append(latency * 1000)
        if 200 <= status < 300:
            self.ok += 1
            if batch:
                m = _ACCEPTED.search(body)
                self.items_accepted += int(m.group(1)) if m else 0
            else:
                self.items_accepted += 1
        else:
            m = _ERROR_CODE.search(body)
            self.status[f"{status}:{m.group(1).decode()}" if m else str(status)] += 1


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"content-length:")
        if at < 0:
            raise ValueError("response without Content-Length")
        length = int(lower[at + 15 : lower.find(b"\r\n", at)])
        body = await self.reader.readexactly(length) if length else b""
        if b"connection: close" in lower:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _pct(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for p in (50, 90, 99, 99.9):
        out[f"p{p:g}"] = (
            round(ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1], 2) if ordered else None
        )
    out["max"] = round(ordered[-1], 2) if ordered else None
    out["mean"] = round(sum(ordered) / len(ordered), 2) if ordered else None
    return out


async def _exchange_once(
    conn: Connection, request: bytes, stats: Stats, t_ref: float, batch: bool
) -> None:
    try:
        status, body = await conn.exchange(request)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        stats.status["conn"] += 1
        conn.close()
        return
    done = time.perf_counter()
    stats.last_done = done
    stats.record(status, body, done - t_ref, batch)


async def closed_loop(args: argparse.Namespace, wl: Workload, stats: Stats) -> int:
    host, port = _host_port(args.url)
    deadline = time.perf_counter() + args.duration
    remaining = [args.requests]
    batch = wl.kind == "batch"

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            while remaining[0] > 0 and time.perf_counter() < deadline:
                remaining[0] -= 1
                request = wl.request()
                t0 = time.perf_counter()
                await _exchange_once(conn, request, stats, t0, batch)
        finally:
            conn.close()

    stats.first_send = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=args.duration + args.grace)
    for task in pending:
        task.cancel()
    return len(pending)


async def open_loop(args: argparse.Namespace, wl: Workload, stats: Stats) -> int:
    host, port = _host_port(args.url)
    total = int(args.rate * args.duration)
    if args.requests:
        total = min(total, args.requests)
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    batch = wl.kind == "batch"

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            while True:
                scheduled = await queue.get()
                if scheduled is None:
                    return
                request = wl.request()
                now = time.perf_counter()
                stats.send_lag.append((now - scheduled) * 1000)
                await _exchange_once(conn, request, stats, scheduled, batch)
        finally:
            conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
    start = time.perf_counter() + 0.05
    stats.first_send = start
    sent = 0
    interval = 1.0 / args.rate
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * args.rate) + 1) if now >= start else 0
        while sent < due:
            queue.put_nowait(start + sent * interval)
            sent += 1
        # ≥ 1 ms: shorter sleeps spin the loop (uvloop's timers have 1 ms resolution) and
        # would take a core from the server; each wake-up releases every send now due.
        await asyncio.sleep(max(0.001, start + sent * interval - time.perf_counter()))
    for _ in tasks:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(tasks, timeout=args.grace)
    for task in pending:
        task.cancel()
    # Scheduled requests never answered: still queued, or in flight when time ran out.
    return total - len(stats.latencies) - stats.status["conn"]


def _host_port(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.partition(":")
    return host, int(port or 80)


async def generate(args: argparse.Namespace) -> dict[str, Any]:
    wl = Workload(args)
    stats = Stats()
    wall_start = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if args.mode == "closed":
        timeouts = await closed_loop(args, wl, stats)
    else:
        timeouts = await open_loop(args, wl, stats)
    t1 = time.perf_counter()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    if timeouts:
        stats.status["timeout"] += timeouts
    first = stats.first_send or t0
    elapsed = max((stats.last_done or t1) - first, 1e-6)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    count = len(stats.latencies)
    return {
        "mode": args.mode,
        "workload": wl.kind,
        "concurrency": args.concurrency,
        "offered_rate": args.rate if args.mode == "open" else None,
        "count": count,
        "ok": stats.ok,
        "errors": dict(stats.status),
        "items_accepted": stats.items_accepted,
        "elapsed_s": round(elapsed, 3),
        "rate": round(count / elapsed, 1),
        "ok_rate": round(stats.ok / elapsed, 1),
        "items_rate": round(stats.items_accepted / elapsed, 1),
        "latency_ms": _pct(stats.latencies),
        "send_lag_ms": _pct(stats.send_lag) if stats.send_lag else None,
        "cpu_s": round(cpu_s, 3),
        "cpu_cores": round(cpu_s / max(t1 - t0, 1e-6), 3),
        "started_at": round(wall_start + (first - t0), 3),
        "ended_at": round(wall_start + (t1 - t0), 3),
        "uvloop": _UVLOOP,
    }


# -- a trivial server, to measure the generator itself ----------------------------

_CANNED = (
    b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n"
    b'{"status":"pending"}'
)


class _Canned(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            at = head.find(b"content-length:")
            length = 0
            if at >= 0:
                eol = head.find(b"\r\n", at)
                length = int(head[at + 15 : eol if eol >= 0 else len(head)])
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.transport.write(_CANNED)


async def serve(port: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Canned, "127.0.0.1", port)
    print(json.dumps({"listening": port}), flush=True)
    await asyncio.sleep(seconds)
    server.close()


def _install_uvloop() -> bool:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return True
    except ImportError:
        return False


_UVLOOP = False


def main() -> None:
    global _UVLOOP
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key")
    parser.add_argument("--workload", choices=["order", "batch", "redeem", "get"], default="get")
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--customers", help="JSON file: a list of customer codes")
    parser.add_argument("--prefix", default=f"lg{int(time.time())}")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--value", type=int, default=1, help="points per redeem")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--concurrency", type=int, default=8, help="connections")
    parser.add_argument("--requests", type=int, default=1_000_000, help="cap on requests sent")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of sending (max)")
    parser.add_argument("--rate", type=float, default=100.0, help="open loop: requests/s")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to wait for answers")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--serve", type=int, metavar="PORT", help="run the trivial server")
    args = parser.parse_args()
    if args.duration > 600 or args.requests > 10_000_000 or args.rate > 200_000:
        parser.error("load is bounded: --duration ≤ 600, --requests ≤ 10M, --rate ≤ 200k")
    if not args.url.startswith(("http://127.", "http://localhost")):
        parser.error("loopback targets only")
    _UVLOOP = _install_uvloop()
    if args.serve:
        asyncio.run(serve(args.serve, args.duration))
        return
    result = asyncio.run(generate(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
