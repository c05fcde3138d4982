"""``GET /metrics`` on the API: route templates and statuses, produce latency, waits, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest_api import metrics
from punchline.config import Settings
from tests.support.factories import Tenant, order_body
from tests.support.workers import WorkerPool

ON_SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(client: httpx.AsyncClient) -> tuple[str, Samples]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return response.text, samples


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


@ON_SESSION_LOOP
async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    requests = metrics.HTTP_REQUESTS + "_total"
    _, before = await _scrape(client)
    h = tenant.headers
    code = tenant.customer_codes[0]
    assert (
        await client.post("/v1/orders", json=order_body(customer_code=code), headers=h)
    ).status_code == 202
    assert (
        await client.post("/v1/orders", json=order_body(customer_code=code), headers=h)
    ).status_code == 202
    assert (await client.post("/v1/orders", json={"lines": []}, headers=h)).status_code == 422
    assert (await client.get("/v1/transactions/raw-path-id-7", headers=h)).status_code == 404
    assert (await client.get("/no/such/page-9")).status_code == 404
    oversized = b'{"pad": "' + b"x" * settings.max_body_bytes + b'"}'
    too_big = await client.post(
        "/v1/orders", content=oversized, headers=h | {"Content-Type": "application/json"}
    )
    assert too_big.status_code == 413
    text, after = await _scrape(client)

    post, get = {"method": "POST"}, {"method": "GET"}
    assert _delta(before, after, requests, **post, route="/v1/orders", status="202") == 2
    assert _delta(before, after, requests, **post, route="/v1/orders", status="422") == 1
    # Answered by BodyLimits before routing, and still labelled with the template.
    assert _delta(before, after, requests, **post, route="/v1/orders", status="413") == 1
    tx = "/v1/transactions/{external_id}"
    assert _delta(before, after, requests, **get, route=tx, status="404") == 1
    assert _delta(before, after, requests, **get, route="<unmatched>", status="404") == 1
    assert "raw-path-id-7" not in text
    assert "page-9" not in text
    histogram = metrics.HTTP_REQUEST_SECONDS + "_count"
    assert _delta(before, after, histogram, **post, route="/v1/orders") == 4


@ON_SESSION_LOOP
async def test_produce_latency_and_batch_items_are_measured(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, before = await _scrape(client)
    code = tenant.customer_codes[0]
    orders = [order_body(customer_code=code), {"lines": []}, order_body(customer_code=code)]
    batch = await client.post("/v1/orders:batch", json={"orders": orders}, headers=tenant.headers)
    assert batch.status_code == 202, batch.text
    single = await client.post(
        "/v1/orders", json=order_body(customer_code=code), headers=tenant.headers
    )
    assert single.status_code == 202
    _, after = await _scrape(client)

    produce = metrics.PRODUCE_SECONDS + "_count"
    assert _delta(before, after, produce, outcome="ok") == 2  # one per send_many, not per item
    assert _delta(before, after, metrics.PRODUCED_MESSAGES + "_total", outcome="ok") == 3
    items = metrics.BATCH_ITEMS + "_total"
    assert _delta(before, after, items, result="accepted") == 2
    assert _delta(before, after, items, result="rejected") == 1
    batch_route = {"method": "POST", "route": "/v1/orders:batch", "status": "202"}
    assert _delta(before, after, metrics.HTTP_REQUESTS + "_total", **batch_route) == 1


@ON_SESSION_LOOP
async def test_no_api_key_or_email_reaches_metrics(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    email = "Secret.Person@Example.com"
    body = order_body(customer_code=tenant.customer_codes[0], external_id=f"by-email-{email}")
    body["customer"] = {"type": "email", "value": email}
    response = await client.post("/v1/orders", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]
    assert (await client.get(status_url, headers=tenant.headers)).status_code == 200
    bad_key = "sk_live_" + "Q" * 32
    assert (await client.get(status_url, headers={"X-Api-Key": bad_key})).status_code == 401
    text, _ = await _scrape(client)
    lowered = text.lower()
    assert email.lower() not in lowered
    assert "secret.person" not in lowered
    assert "@" not in text
    assert tenant.key not in text
    assert tenant.key[:12] not in text
    assert bad_key not in text


@pytest.mark.slow
@ON_SESSION_LOOP
async def test_waits_are_counted_by_outcome(
    client: httpx.AsyncClient, tenant: Tenant, workers: WorkerPool
) -> None:
    waits = metrics.WAITS + "_total"
    code = tenant.customer_codes[0]
    _, before = await _scrape(client)
    # No worker yet: the wait ends without a result.
    timed_out = await client.post(
        "/v1/orders",
        json=order_body(customer_code=code),
        headers=tenant.headers | {"Prefer": "wait=1"},
    )
    assert timed_out.status_code == 202
    _, middle = await _scrape(client)
    assert _delta(before, middle, waits, outcome="timeout") == 1
    assert _delta(before, middle, waits, outcome="applied") == 0

    workers.start()
    applied = await client.post(
        "/v1/orders",
        json=order_body(customer_code=code),
        headers=tenant.headers | {"Prefer": "wait=60"},
    )
    assert applied.status_code == 200, (applied.text, workers.logs())
    _, after = await _scrape(client)
    assert _delta(middle, after, waits, outcome="applied") == 1
    assert _delta(middle, after, waits, outcome="timeout") == 0


_INCREMENT = """
from ingest_api import metrics
metrics.http_requests.labels("GET", "/v1/things/{id}", "200").inc(N)
"""

_RENDER = """
import sys
from ingest_api import metrics
sys.stdout.write(metrics.render()[0].decode())
"""


def test_multiprocess_mode_aggregates_every_worker_process(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    root = Path(__file__).resolve().parent.parent
    for n in (2, 3):  # two API worker processes, each counting its own requests
        subprocess.run(
            [sys.executable, "-c", _INCREMENT.replace("N", str(n))], env=env, cwd=root, check=True
        )
    scraped = subprocess.run(
        [sys.executable, "-c", _RENDER], env=env, cwd=root, check=True, capture_output=True
    ).stdout.decode()
    values = {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name == metrics.HTTP_REQUESTS + "_total"
    }
    labels = frozenset({"method": "GET", "route": "/v1/things/{id}", "status": "200"}.items())
    assert values.get(labels) == 5
