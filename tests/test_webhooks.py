"""Outbound webhooks on real services: API → outbox → relay → Kafka → dispatcher → a real
HTTP receiver on loopback. Signatures verify, retries back off and stop, event ids are
stable, and a failing endpoint never holds up another merchant."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.errors import ApiError
from ingest_api.services.admin_webhooks import check_url_policy
from punchline.config import Settings
from punchline.devstack.ports import free_port
from tests.support.factories import Tenant, create_tenant, outbox_events
from tests.support.polling import eventually
from tests.support.workers import settings_env
from workers.outbox_relay import OutboxRelay, new_producer
from workers.topics import ensure_topics
from workers.webhooks import sender
from workers.webhooks.dispatcher import Dispatcher
from workers.webhooks.signing import sign, verify_signature

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "whsec_test_secret_0123456789abcdef"


# --- a real HTTP receiver ------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """Answers each path by a script: ``script(n)`` is the status of the n-th call (1-based)."""

    scripts: dict[str, Callable[[int], int]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    hits: list[Hit] = field(default_factory=list)
    base_url: str = ""

    def on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        if path in self.hang:
            await asyncio.sleep(3600)
        n = len(self.on(path)) + 1
        status = self.scripts.get(path, lambda _n: 200)(n)
        self.hits.append(Hit(path, dict(request.headers), body, status))
        return web.Response(status=status, text="ok" if status < 300 else "try later")

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rx.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    rx.base_url = f"http://127.0.0.1:{port}"
    yield rx
    await runner.cleanup()


# --- the relay and the dispatcher, in process ----------------------------------------


@pytest.fixture
async def hook_settings(settings: Settings) -> Settings:
    tuned = settings.model_copy(
        update={
            "relay_poll_interval_s": 0.05,
            "webhook_max_attempts": 5,
            "webhook_backoff_initial_s": 0.05,
            "webhook_backoff_max_s": 0.4,
            "webhook_timeout_s": 1.5,
            "webhook_poll_interval_s": 0.05,
            "webhook_lease_s": 3.0,
            "webhook_concurrency": 2,
        }
    )
    await ensure_topics(tuned)
    return tuned


@contextlib.asynccontextmanager
async def pipeline(
    settings: Settings, engine: AsyncEngine, dispatchers: int = 1
) -> AsyncIterator[None]:
    producer = new_producer(settings)
    await producer.start()
    client = sender.new_client(
        timeout_s=settings.webhook_timeout_s, max_connections=settings.webhook_concurrency
    )
    stopping = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(settings, engine, producer).run(stopping))
    running = [Dispatcher(settings, engine, client) for _ in range(dispatchers)]
    tasks = [asyncio.create_task(d.run()) for d in running]
    try:
        yield
    finally:
        stopping.set()
        for d in running:
            d.stopping.set()
        await asyncio.gather(relay, *tasks)
        await producer.stop()
        await client.aclose()


async def register(
    client: httpx.AsyncClient, tenant: Tenant, url: str, events: list[str], **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/webhooks", json={"url": url, "events": events, **extra}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def adjust(client: httpx.AsyncClient, tenant: Tenant, points: int, *, n: int = 0) -> None:
    response = await client.post(
        f"/v1/admin/customers/{tenant.customer_codes[n]}/points",
        json={"points": points, "reason": "webhook test"},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text


async def deliveries(
    client: httpx.AsyncClient, tenant: Tenant, hook_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/admin/webhooks/{hook_id}/deliveries", params={"limit": 200}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["deliveries"]))  # oldest first


async def settled(
    client: httpx.AsyncClient, tenant: Tenant, hook_id: str, count: int, status: str = "succeeded"
) -> list[dict[str, Any]]:
    return await eventually(
        lambda: deliveries(client, tenant, hook_id),
        lambda ds: len(ds) >= count and all(d["status"] == status for d in ds),
        timeout_s=60,
        describe=f"{count} deliveries {status}",
    )


# --- signatures ----------------------------------------------------------------------


async def test_verify_signature_accepts_only_fresh_untampered_bodies() -> None:
    body = b'{"event_type": "points.adjusted"}'
    header = sign(SECRET, body, timestamp=1_800_000_000)
    assert verify_signature(SECRET, header, body, 300, now=1_800_000_100)
    assert verify_signature(SECRET, header, body.decode(), 300, now=1_800_000_000)
    assert not verify_signature(SECRET, header, body + b" ", 300, now=1_800_000_100)
    assert not verify_signature("whsec_other_secret_000000000000", header, body, now=1_800_000_100)
    assert not verify_signature(SECRET, header, body, 300, now=1_800_000_301)  # replayed late
    assert not verify_signature(SECRET, header, body, 300, now=1_799_999_600)  # from the future
    for broken in (None, "", "v1=abc", "t=1800000000", "t=x,v1=" + header[-64:], "garbage"):
        assert not verify_signature(SECRET, broken, body, 300, now=1_800_000_000)
    rotated = header + ",v1=" + "0" * 64  # several signatures: any one may match
    assert verify_signature(SECRET, rotated, body, 300, now=1_800_000_000)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        pytest.param("https://merchant.example/hooks", True, id="public https"),
        pytest.param("https://8.8.8.8/hooks", True, id="public address"),
        pytest.param("http://merchant.example/hooks", False, id="plain http"),
        pytest.param("https://127.0.0.1/hooks", False, id="loopback"),
        pytest.param("https://10.1.2.3/hooks", False, id="private"),
        pytest.param("https://169.254.169.254/latest", False, id="link-local metadata"),
        pytest.param("https://[::1]/hooks", False, id="ipv6 loopback"),
        pytest.param("https://localhost/hooks", False, id="localhost"),
        pytest.param("https://db.internal/hooks", False, id="internal name"),
    ],
)
async def test_production_refuses_internal_or_plain_http_urls(url: str, allowed: bool) -> None:
    check_url_policy(url, production=False)  # anything goes in dev and tests
    if allowed:
        check_url_policy(url, production=True)
    else:
        with pytest.raises(ApiError) as refused:
            check_url_policy(url, production=True)
        assert refused.value.status == 422 and refused.value.code == "validation_error"


async def test_registration_shows_the_secret_once(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await register(client, tenant, "http://127.0.0.1:9/x", ["points.*", "coupon.issued"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["events"] == ["coupon.issued", "points.*"] and created["active"] is True
    chosen = await register(client, tenant, "http://127.0.0.1:9/y", ["*"], secret=SECRET)
    assert chosen["secret"] == SECRET
    listed = (await client.get("/v1/admin/webhooks", headers=tenant.headers)).json()["webhooks"]
    assert [h["id"] for h in listed] == [created["id"], chosen["id"]]
    assert all("secret" not in h for h in listed)
    one = await client.get(f"/v1/admin/webhooks/{created['id']}", headers=tenant.headers)
    assert "secret" not in one.json() and one.json()["url"] == "http://127.0.0.1:9/x"


# --- delivery ------------------------------------------------------------------------


async def test_deliveries_are_signed_and_filtered_by_event_type(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    points = await register(client, tenant, receiver.url("/points"), ["points.*"], secret=SECRET)
    others = await register(client, tenant, receiver.url("/customers"), ["customer.*"])
    async with pipeline(hook_settings, engine):
        await adjust(client, tenant, 25)
        [done] = await settled(client, tenant, points["id"], 1)
    [hit] = receiver.on("/points")
    assert verify_signature(SECRET, hit.headers["X-Punchline-Signature"], hit.body)
    assert not verify_signature(others["secret"], hit.headers["X-Punchline-Signature"], hit.body)
    [outboxed] = await outbox_events(engine, org_id=tenant.org_id, event_type="points.adjusted")
    assert hit.headers["X-Punchline-Event-Id"] == str(outboxed["event_id"]) == done["event_id"]
    assert hit.headers["X-Punchline-Event-Type"] == "points.adjusted"
    assert hit.headers["Content-Type"] == "application/json"
    event = orjson.loads(hit.body)
    assert event["schema_version"] == 1
    assert (event["event_type"], event["customer_code"]) == (
        "points.adjusted",
        tenant.customer_codes[0],
    )
    assert (event["data"]["adjustment"], event["data"]["balance"]) == (25, 25)
    assert (done["attempts"], done["last_status_code"]) == (1, 200)
    assert receiver.on("/customers") == []
    assert await deliveries(client, tenant, others["id"]) == []


async def test_a_flaky_receiver_gets_the_event_exactly_once_as_a_success(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    receiver.scripts["/flaky"] = lambda n: 500 if n <= 3 else 200
    hook = await register(
        client, tenant, receiver.url("/flaky"), ["points.adjusted"], secret=SECRET
    )
    async with pipeline(hook_settings, engine):
        await adjust(client, tenant, 10)
        [first] = await settled(client, tenant, hook["id"], 1)
        # A later event, delivered after the first: nothing more of the first arrives.
        await adjust(client, tenant, 5)
        await settled(client, tenant, hook["id"], 2)
    hits = receiver.on("/flaky")
    first_hits = [h for h in hits if h.headers["X-Punchline-Event-Id"] == first["event_id"]]
    assert [h.answered for h in first_hits] == [500, 500, 500, 200]
    assert [h.headers["X-Punchline-Delivery-Attempt"] for h in first_hits] == ["1", "2", "3", "4"]
    assert len({h.body for h in first_hits}) == 1  # the same bytes every time
    assert all(
        verify_signature(SECRET, h.headers["X-Punchline-Signature"], h.body) for h in first_hits
    )
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("succeeded", 4, 200)
    assert len(hits) == 5  # the second event succeeded at once


async def test_retries_stop_at_the_limit_and_the_endpoint_moves_on(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    receiver.scripts["/down"] = lambda n: 503
    limited = hook_settings.model_copy(update={"webhook_max_attempts": 3})
    hook = await register(client, tenant, receiver.url("/down"), ["points.*"])
    async with pipeline(limited, engine):
        await adjust(client, tenant, 10)
        await adjust(client, tenant, 20)
        failed = await settled(client, tenant, hook["id"], 2, status="failed")
    assert [(d["attempts"], d["last_status_code"]) for d in failed] == [(3, 503), (3, 503)]
    assert "try later" in failed[0]["last_error"]
    ids = [h.headers["X-Punchline-Event-Id"] for h in receiver.on("/down")]
    assert ids == [failed[0]["event_id"]] * 3 + [failed[1]["event_id"]] * 3
    only_failed = await client.get(
        f"/v1/admin/webhooks/{hook['id']}/deliveries",
        params={"status": "failed"},
        headers=tenant.headers,
    )
    assert only_failed.json()["pagination"]["total"] == 2


@pytest.mark.parametrize("failure", ["errors", "hangs"])
async def test_a_failing_endpoint_never_blocks_another_merchant(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    hook_settings: Settings,
    receiver: Receiver,
    failure: str,
) -> None:
    if failure == "errors":
        receiver.scripts["/broken"] = lambda n: 500
    else:
        receiver.hang.add("/broken")
    patient = hook_settings.model_copy(
        update={"webhook_max_attempts": 50, "webhook_concurrency": 1}
    )
    other = await create_tenant(engine, customers_count=1)
    broken = await register(client, tenant, receiver.url("/broken"), ["*"])
    healthy = await register(client, other, receiver.url("/healthy"), ["*"])
    async with pipeline(patient, engine):
        for _ in range(5):
            await adjust(client, tenant, 10)
        await eventually(
            lambda: deliveries(client, tenant, broken["id"]),
            lambda ds: len(ds) == 5 and ds[0]["attempts"] >= 1,
            describe="the broken endpoint being tried",
        )
        for n in range(3):
            await adjust(client, other, 10 + n)
        healthy_done = await settled(client, other, healthy["id"], 3)
        still_broken = await deliveries(client, tenant, broken["id"])
    assert [d["status"] for d in still_broken] == ["pending"] * 5
    assert len(healthy_done) == 3 and len(receiver.on("/healthy")) == 3


async def test_two_dispatchers_deliver_each_event_once_in_order(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    hook = await register(client, tenant, receiver.url("/orders"), ["points.*"])
    async with pipeline(hook_settings, engine, dispatchers=2):
        for n in range(12):
            await adjust(client, tenant, n + 1)
        await settled(client, tenant, hook["id"], 12)
    sequences = [orjson.loads(h.body)["sequence"] for h in receiver.on("/orders")]
    assert len(sequences) == 12 and sequences == sorted(sequences)


async def test_disabling_an_endpoint_cancels_its_pending_deliveries(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    hook_settings: Settings,
    receiver: Receiver,
) -> None:
    receiver.scripts["/gone"] = lambda n: 500
    patient = hook_settings.model_copy(update={"webhook_max_attempts": 50})
    hook = await register(client, tenant, receiver.url("/gone"), ["points.*"])
    async with pipeline(patient, engine):
        await adjust(client, tenant, 10)
        await eventually(
            lambda: deliveries(client, tenant, hook["id"]),
            lambda ds: len(ds) == 1 and ds[0]["attempts"] >= 2,
        )
        disabled = await client.delete(f"/v1/admin/webhooks/{hook['id']}", headers=tenant.headers)
        assert disabled.json()["active"] is False
        await settled(client, tenant, hook["id"], 1, status="cancelled")
        tried = len(receiver.on("/gone"))
        sentinel = await register(client, tenant, receiver.url("/sentinel"), ["points.*"])
        await adjust(client, tenant, 20)  # a later event is not fanned out to it
        await settled(client, tenant, sentinel["id"], 1)
    assert len(await deliveries(client, tenant, hook["id"])) == 1
    assert len(receiver.on("/gone")) <= tried + 1  # at most the attempt in flight


# --- the real commands ---------------------------------------------------------------


def _spawn(command: str, settings: Settings, log_dir: Path) -> subprocess.Popen[bytes]:
    env = settings_env(settings)
    env.update(
        {
            "PUNCHLINE_RELAY_POLL_INTERVAL_S": "0.05",
            "PUNCHLINE_WEBHOOK_POLL_INTERVAL_S": "0.05",
            "PUNCHLINE_WEBHOOK_BACKOFF_INITIAL_S": "0.05",
            "PUNCHLINE_WEBHOOK_BACKOFF_MAX_S": "0.2",
        }
    )
    log = open(log_dir / f"{command}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "punchline.cli", command],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _logs(log_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-2000:] for p in log_dir.glob("*.log"))


async def test_punchline_relay_and_webhooks_commands_end_to_end(
    client: httpx.AsyncClient,
    tenant: Tenant,
    hook_settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    receiver.scripts["/e2e"] = lambda n: 500 if n == 1 else 200
    hook = await register(client, tenant, receiver.url("/e2e"), ["points.*"], secret=SECRET)
    procs = [_spawn(c, hook_settings, tmp_path) for c in ("relay", "webhooks")]
    try:
        await adjust(client, tenant, 42)
        [done] = await settled(client, tenant, hook["id"], 1)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(proc.wait, 30) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert codes == [0, 0], _logs(tmp_path)
    hits = receiver.on("/e2e")
    assert [h.answered for h in hits] == [500, 200]
    assert {h.headers["X-Punchline-Event-Id"] for h in hits} == {done["event_id"]}
    assert all(verify_signature(SECRET, h.headers["X-Punchline-Signature"], h.body) for h in hits)
    assert uuid.UUID(done["event_id"])
