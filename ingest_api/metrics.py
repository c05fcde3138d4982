"""Prometheus metrics of the edge: requests, produce latency, waits, batch items.

Names are constants so dashboards and tests refer to one spelling. Labels never
carry request data: the route label is the matched path *template*
(``/v1/transactions/{external_id}``), never the raw path, so no id, email or
key can reach ``/metrics`` and the label set stays bounded.

Several uvicorn worker processes (``punchline api --workers N``): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable directory before the API
starts (and wipe it between runs). prometheus-client then keeps every value in
per-process files there, and ``GET /metrics`` on any process aggregates all of
them. Without the variable each process serves its own in-memory registry.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

from ingest_api.waiter import Key, ResultWaiter
from punchline.db.repositories.transactions import TransactionRow

HTTP_REQUESTS: Final = "punchline_http_requests"
HTTP_REQUEST_SECONDS: Final = "punchline_http_request_duration_seconds"
PRODUCE_SECONDS: Final = "punchline_produce_duration_seconds"
PRODUCED_MESSAGES: Final = "punchline_produced_messages"
WAITS: Final = "punchline_prefer_waits"
BATCH_ITEMS: Final = "punchline_batch_items"

UNMATCHED_ROUTE: Final = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

http_requests = Counter(
    HTTP_REQUESTS,
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
http_request_seconds = Histogram(
    HTTP_REQUEST_SECONDS,
    "HTTP request handling time by method and route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
produce_seconds = Histogram(
    PRODUCE_SECONDS,
    "Time to get one send_many call acknowledged by the broker (acks=all).",
    ["outcome"],
    buckets=_LATENCY_BUCKETS,
)
produced_messages = Counter(
    PRODUCED_MESSAGES, "Messages handed to the broker, by outcome.", ["outcome"]
)
waits = Counter(WAITS, "Waits for a result (Prefer: wait, /webhook/pos), by outcome.", ["outcome"])
batch_items = Counter(
    BATCH_ITEMS, "Items of POST /v1/orders:batch, accepted or rejected.", ["result"]
)


@contextmanager
def measure_produce(count: int) -> Iterator[None]:
    """Time one produce call; the outcome is ``error`` when it raises."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        produce_seconds.labels(outcome).observe(time.perf_counter() - started)
        produced_messages.labels(outcome).inc(count)


class MeasuredWaiter(ResultWaiter):
    """The result waiter, counting how waits end: ``applied`` or ``timeout``."""

    async def wait(self, key: Key, timeout_s: float) -> TransactionRow | None:
        try:
            row = await super().wait(key, timeout_s)
        except BaseException:
            waits.labels("error").inc()
            raise
        waits.labels("timeout" if row is None else "applied").inc()
        return row


def render() -> tuple[bytes, str]:
    """The exposition text: every process's values in multiprocess mode, else this one's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


async def metrics_endpoint(request: Request) -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RouteTemplates:
    """The path template a request matched; never the raw path.

    Routing records the matched route in ``scope["route"]``. A request answered before
    routing (413 or 415 from ``BodyLimits``) has none; it is matched here against the
    documented paths, compiled once on first need.
    """

    def __init__(self, paths: Callable[[], Iterable[str]]) -> None:
        self._paths = paths
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str) and path:
            return path
        if self._compiled is None:
            self._compiled = [(compile_path(p)[0], p) for p in self._paths()]
        raw = scope.get("path", "")
        for regex, template in self._compiled:
            if regex.match(raw):
                return template
        return UNMATCHED_ROUTE


class RequestMetrics:
    """Pure ASGI middleware counting requests by method, route template and status."""

    def __init__(self, app: ASGIApp, *, paths: Callable[[], Iterable[str]]) -> None:
        self.app = app
        self.templates = RouteTemplates(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = self.templates(scope)
            http_requests.labels(method, route, str(status)).inc()
            http_request_seconds.labels(method, route).observe(time.perf_counter() - started)
