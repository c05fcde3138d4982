"""Fault injection on real services (issue 7, "Faults" and "Concurrency").

Every test drives the real edge (ASGI), the real Tansu broker and real `punchline worker`
processes, injects one fault, and ends with the same check: every accepted order was
applied exactly once and `punchline reconcile` finds the books clean.

Figures from the last run are in docs/reliability.md. Sizes are module constants so the
file stays within its time budget on 2 cores.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.routes.orders import order_event
from punchline.config import Settings
from punchline.reconcile import format_report, reconcile
from schemas.orders import OrderIn
from tests.support.books import duplicate_ledger_keys, ledger_mismatches
from tests.support.factories import Tenant, create_tenant, credit, order_body, wallet_balance
from tests.support.polling import eventually
from tests.support.pos import pos_client
from tests.support.workers import WorkerPool, settings_env

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.fault,
]

BATCH = "/v1/orders:batch"
POINTS_PER_ORDER = 11  # order_body's default lines: 1150 cents at 1 point per 100 cents

KILL_STREAM = 20_000  # orders in the SIGKILL test
KILLS = 5
SCALE_STREAM = 8_000  # orders in the 1 -> 3 -> 1 test
DUP_ORDERS = 200  # distinct external_ids sent 5 times each
REDEEMS = 200
MIXED_EARNS = 100


# --- fixtures ------------------------------------------------------------------------------


def _start_relay(settings: Settings, log_dir: Path) -> subprocess.Popen[bytes]:
    with open(log_dir / "relay.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "punchline.cli", "relay"],
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def relay(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`punchline relay`, so that reconcile's "every outbox event was published" holds."""
    proc = _start_relay(settings, tmp_path)
    try:
        yield proc
    finally:
        _stop(proc)


# --- helpers -------------------------------------------------------------------------------


async def _post_batches(
    client: httpx.AsyncClient, tenant: Tenant, bodies: list[dict[str, Any]], size: int = 1000
) -> list[str]:
    """Produce through the batch endpoint, in order; return the accepted external_ids."""
    accepted: list[str] = []
    for start in range(0, len(bodies), size):
        chunk = bodies[start : start + size]
        response = await client.post(BATCH, json={"orders": chunk}, headers=tenant.headers)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["accepted"] == len(chunk), body
        accepted.extend(r["external_id"] for r in body["results"])
    return accepted


async def _order_count(engine: AsyncEngine, org_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM transactions WHERE org_id = :o AND kind = 'order'"),
                    {"o": org_id},
                )
            ).scalar_one()
        )


async def _order_rows(engine: AsyncEngine, org_id: uuid.UUID) -> dict[str, tuple[str, int, int]]:
    """external_id -> (status, points, duplicate_count) of every order transaction."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT external_id, status, points, duplicate_count FROM transactions"
                " WHERE org_id = :o AND kind = 'order'"
            ),
            {"o": org_id},
        )
        return {r.external_id: (r.status, r.points, r.duplicate_count) for r in rows}


async def _earn_ledger(engine: AsyncEngine, org_id: uuid.UUID) -> dict[str, tuple[int, int]]:
    """external_id -> (rows, summed delta) of the points ledger of orders."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT external_id, count(*) AS n, sum(delta) AS total FROM ledger_entries"
                " WHERE org_id = :o AND kind = 'order' AND asset = 'points' GROUP BY external_id"
            ),
            {"o": org_id},
        )
        return {r.external_id: (int(r.n), int(r.total)) for r in rows}


async def _books_clean(engine: AsyncEngine, org_id: uuid.UUID) -> None:
    report = await reconcile(engine, org_id=org_id)
    assert report.ok, format_report(report)
    assert await duplicate_ledger_keys(engine, org_id) == 0
    assert await ledger_mismatches(engine, org_id) == []


async def _relay_done(engine: AsyncEngine, org_id: uuid.UUID, timeout_s: float = 60) -> None:
    async def unpublished() -> int:
        async with engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM outbox WHERE org_id = :o AND published_at IS NULL"
                        ),
                        {"o": org_id},
                    )
                ).scalar_one()
            )

    await eventually(unpublished, lambda n: n == 0, timeout_s=timeout_s, describe="outbox drained")


async def _exactly_once(engine: AsyncEngine, org_id: uuid.UUID, accepted: set[str]) -> None:
    """Every accepted order applied once, nothing else applied, one ledger row each, books clean."""
    rows = await _order_rows(engine, org_id)
    lost = accepted - set(rows)
    extra = set(rows) - accepted
    assert not lost, f"{len(lost)} accepted orders never applied, e.g. {sorted(lost)[:5]}"
    assert not extra, f"{len(extra)} orders applied that were never accepted: {sorted(extra)[:5]}"
    not_applied = {k: v for k, v in rows.items() if v[0] != "applied"}
    assert not not_applied, list(not_applied.items())[:5]
    ledger = await _earn_ledger(engine, org_id)
    doubled = {k: v for k, v in ledger.items() if v != (1, POINTS_PER_ORDER)}
    assert not doubled, f"{len(doubled)} orders with a wrong ledger: {list(doubled.items())[:5]}"
    assert set(ledger) == accepted
    await _relay_done(engine, org_id)
    await _books_clean(engine, org_id)


async def _wait_applied(
    engine: AsyncEngine, org_id: uuid.UUID, n: int, timeout_s: float, pool: WorkerPool
) -> None:
    try:
        await eventually(
            lambda: _order_count(engine, org_id),
            lambda c: c >= n,
            timeout_s=timeout_s,
            interval_s=0.25,
            describe=f"{n} orders applied",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker logs ---\n{pool.logs()}") from None


def _bodies(tenant: Tenant, prefix: str, n: int) -> list[dict[str, Any]]:
    codes = tenant.customer_codes
    return [
        order_body(customer_code=codes[i % len(codes)], external_id=f"{prefix}-{i}")
        for i in range(n)
    ]


# --- 1. SIGKILL x5 mid-stream --------------------------------------------------------------


async def test_worker_sigkilled_five_times_mid_stream_applies_everything_once(
    client: httpx.AsyncClient,
    tenant: Tenant,
    workers: WorkerPool,
    engine: AsyncEngine,
    relay: subprocess.Popen[bytes],
) -> None:
    bodies = _bodies(tenant, "k5", KILL_STREAM)
    worker = workers.start()
    producing = asyncio.create_task(_post_batches(client, tenant, bodies))
    kills_at: list[int] = []
    for k in range(1, KILLS + 1):
        # Kill points spread over the stream; each one lands while the worker is applying.
        await _wait_applied(engine, tenant.org_id, KILL_STREAM * k // (KILLS + 2), 120, workers)
        workers.kill(worker)
        kills_at.append(await _order_count(engine, tenant.org_id))
        worker = workers.start()
    assert all(n < KILL_STREAM for n in kills_at), f"a kill landed after the stream: {kills_at}"
    accepted = await producing
    assert len(set(accepted)) == KILL_STREAM
    await _wait_applied(engine, tenant.org_id, KILL_STREAM, 180, workers)
    await _exactly_once(engine, tenant.org_id, set(accepted))
    print(f"\nsigkill: {KILL_STREAM} orders, {KILLS} kills at applied counts {kills_at}")


# --- 2. Scale 1 -> 3 -> 1 --------------------------------------------------------------------


async def test_workers_scale_one_three_one_during_a_stream(
    client: httpx.AsyncClient,
    tenant: Tenant,
    workers: WorkerPool,
    engine: AsyncEngine,
    relay: subprocess.Popen[bytes],
) -> None:
    bodies = _bodies(tenant, "sc", SCALE_STREAM)
    first = workers.start()
    producing = asyncio.create_task(_post_batches(client, tenant, bodies, size=500))
    await _wait_applied(engine, tenant.org_id, SCALE_STREAM // 5, 120, workers)
    extra = [workers.start(), workers.start()]
    scaled_up_at = await _order_count(engine, tenant.org_id)
    await _wait_applied(engine, tenant.org_id, SCALE_STREAM // 2, 120, workers)
    # Scale down gracefully (SIGTERM), off the event loop so production keeps going.
    await asyncio.gather(*(asyncio.to_thread(workers.stop, p) for p in extra))
    scaled_down_at = await _order_count(engine, tenant.org_id)
    assert scaled_down_at < SCALE_STREAM, "the scale-down must land mid-stream"
    assert all(p.returncode is not None for p in extra)
    assert first.poll() is None
    accepted = await producing
    await _wait_applied(engine, tenant.org_id, SCALE_STREAM, 180, workers)
    await _exactly_once(engine, tenant.org_id, set(accepted))
    print(f"\nscale: {SCALE_STREAM} orders, 1->3 at {scaled_up_at}, 3->1 at {scaled_down_at}")


# --- 3. Broker unreachable (SIGSTOP) ---------------------------------------------------------


async def _end_offsets(settings: Settings) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.ingest_topic, p) for p in range(settings.partitions)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def _stored_offsets(engine: AsyncEngine, settings: Settings) -> dict[int, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                'SELECT "partition", next_offset FROM consumer_offsets'
                " WHERE group_id = :g AND topic = :t"
            ),
            {"g": settings.consumer_group, "t": settings.ingest_topic},
        )
        return {int(r[0]): int(r[1]) for r in rows}


async def _broker_pause_scenario(
    database_url: str,
    tenant: Tenant,
    engine: AsyncEngine,
    tmp_path: Path,
    *,
    retry_first_refusal: bool,
) -> None:
    """Pause the broker, take orders (all 503), resume, retry some, check the rest never apply.

    The first order sent into the paused broker is the one whose produce request is already
    on the wire when the edge gives up; `retry_first_refusal` decides whether the client
    retries it (every other refusal alternates retried / abandoned).
    """
    from punchline.devstack.broker import TansuBroker
    from tests.conftest import api_client, make_settings
    from workers.topics import ensure_topics

    codes = tenant.customer_codes
    with TansuBroker().start() as own_broker:
        settings: Settings = make_settings(database_url, own_broker.bootstrap)
        await ensure_topics(settings)
        pool = WorkerPool(settings, log_dir=str(tmp_path))
        relay = _start_relay(settings, tmp_path)
        try:
            async with api_client(settings) as api:

                async def post(body: dict[str, Any]) -> httpx.Response:
                    # Hang guard only: far above produce_timeout_s.
                    return await asyncio.wait_for(
                        api.post("/v1/orders", json=body, headers=tenant.headers), timeout=20
                    )

                before = [
                    order_body(customer_code=codes[i % 3], external_id=f"pre-{i}")
                    for i in range(30)
                ]
                pre = await _gather(post, before)
                assert [r.status_code for r in pre] == [202] * len(pre)
                accepted = {b["external_id"] for b in before}
                assert len(accepted) == 30

                own_broker.pause()
                try:
                    down = [
                        order_body(customer_code=codes[i % 3], external_id=f"down-{i}")
                        for i in range(21)
                    ]
                    # The first produce goes onto the wire to the stopped broker; the rest
                    # arrive while the edge is still (or again) trying to reach it.
                    down_responses = [await post(down[0])]
                    down_responses += await _gather(post, down[1:])
                    batch_down = [
                        order_body(customer_code=codes[i % 3], external_id=f"down-b{i}")
                        for i in range(10)
                    ]
                    batch_response = await asyncio.wait_for(
                        api.post(BATCH, json={"orders": batch_down}, headers=tenant.headers),
                        timeout=20,
                    )
                finally:
                    own_broker.resume()
                codes_seen = sorted({r.status_code for r in down_responses})
                assert codes_seen == [503], [r.text for r in down_responses][:3]
                assert all(r.json()["error"] == "broker_unavailable" for r in down_responses)
                assert batch_response.status_code == 503, batch_response.text
                refused = [b["external_id"] for b in down + batch_down]

                # The client retries half of what was refused (same external_id), not the rest.
                retried = refused[::2] if retry_first_refusal else refused[1::2]
                abandoned = set(refused) - set(retried)
                after = [
                    order_body(customer_code=codes[i % 3], external_id=f"post-{i}")
                    for i in range(30)
                ]
                again = [b for b in down + batch_down if b["external_id"] in set(retried)]

                async def until_accepted(body: dict[str, Any]) -> httpx.Response:
                    deadline = time.monotonic() + 30
                    while True:
                        r = await post(body)
                        if r.status_code != 503 or time.monotonic() > deadline:
                            return r
                        await asyncio.sleep(0.5)  # Retry-After

                later = await _gather(until_accepted, after + again)
                assert [r.status_code for r in later] == [202] * len(later)
                accepted |= {b["external_id"] for b in after + again}

                pool.start()
                await _wait_applied(engine, tenant.org_id, len(accepted), 120, pool)
                # The worker has read everything the broker holds, and for a grace period
                # after that nothing refused shows up.
                ends = await _end_offsets(settings)
                await eventually(
                    lambda: _stored_offsets(engine, settings),
                    lambda stored: all(stored.get(p, 0) >= e for p, e in ends.items()),
                    timeout_s=60,
                    describe=f"worker caught up with the log end {ends}",
                )
                grace_end = time.monotonic() + 5
                while time.monotonic() < grace_end:
                    rows = await _order_rows(engine, tenant.org_id)
                    behind_back = abandoned & set(rows)
                    assert not behind_back, (
                        f"{len(behind_back)} orders answered 503 and never retried were applied"
                        f" later: {sorted(behind_back)}; 503 answered after"
                        f" {[round(r.elapsed.total_seconds(), 2) for r in down_responses]} s"
                    )
                    await asyncio.sleep(0.5)
                await _exactly_once(engine, tenant.org_id, accepted)
        finally:
            pool.stop_all()
            _stop(relay)


async def test_broker_sigstopped_503s_are_never_applied_behind_the_clients_back(
    database_url: str, tenant: Tenant, engine: AsyncEngine, tmp_path: Path
) -> None:
    await _broker_pause_scenario(database_url, tenant, engine, tmp_path, retry_first_refusal=False)


async def test_broker_sigstopped_refusals_not_yet_on_the_wire_are_never_delivered(
    database_url: str, tenant: Tenant, engine: AsyncEngine, tmp_path: Path
) -> None:
    """Same fault; the client retries the refusal that was on the wire, as it should.

    aiokafka keeps every refused batch in its accumulator and delivers it after SIGCONT;
    the refusal fence (ingest_api/refusal_fence.py) keeps the worker from applying it.
    """
    await _broker_pause_scenario(database_url, tenant, engine, tmp_path, retry_first_refusal=True)


async def _gather(fn: Any, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    return list(await asyncio.gather(*(fn(b) for b in bodies)))


# --- 4. Each order sent 5 times through three doors -------------------------------------------


def _event_bytes(tenant: Tenant, body: dict[str, Any]) -> tuple[bytes, bytes]:
    """The event exactly as the edge builds it (routes/orders.py)."""
    event = order_event(OrderIn.model_validate(body), tenant.org_id, datetime.now(UTC))
    return event.key, orjson.dumps(event.model_dump(mode="json"))


async def test_each_order_sent_five_times_through_http_batch_and_topic_applies_once(
    client: httpx.AsyncClient,
    tenant: Tenant,
    workers: WorkerPool,
    engine: AsyncEngine,
    settings: Settings,
    relay: subprocess.Popen[bytes],
) -> None:
    bodies = _bodies(tenant, "d5", DUP_ORDERS)
    workers.start()
    workers.start()
    gate = asyncio.Semaphore(32)

    async def single(body: dict[str, Any]) -> int:
        async with gate:
            r = await client.post("/v1/orders", json=body, headers=tenant.headers)
        assert r.status_code == 202, r.text
        return 1

    async def batch() -> int:
        r = await client.post(BATCH, json={"orders": bodies}, headers=tenant.headers)
        assert r.status_code == 202, r.text
        return int(r.json()["accepted"])

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()

    async def direct(body: dict[str, Any]) -> int:
        key, value = _event_bytes(tenant, body)
        await producer.send_and_wait(settings.ingest_topic, value, key=key)
        return 1

    try:
        # Per external_id: 2 x HTTP single, 2 x in a batch, 1 x straight to the topic.
        sends = await asyncio.gather(
            *(single(b) for b in bodies),
            *(single(b) for b in bodies),
            batch(),
            batch(),
            *(direct(b) for b in bodies),
        )
    finally:
        await producer.stop()
    sent = sum(sends)
    assert sent == 5 * DUP_ORDERS

    async def dup_total() -> int:
        rows = await _order_rows(engine, tenant.org_id)
        return sum(v[2] for v in rows.values())

    await _wait_applied(engine, tenant.org_id, DUP_ORDERS, 120, workers)
    caught = await eventually(
        dup_total, lambda n: n >= sent - DUP_ORDERS, timeout_s=120, describe="duplicates counted"
    )
    assert caught == sent - DUP_ORDERS  # every extra send reached the worker and was caught
    rows = await _order_rows(engine, tenant.org_id)
    assert all(v[2] == 4 for v in rows.values()), [v for v in rows.items() if v[1][2] != 4][:5]
    await _exactly_once(engine, tenant.org_id, {b["external_id"] for b in bodies})
    print(f"\nduplicates: {sent} sends of {DUP_ORDERS} orders, {caught} caught as duplicate")


# --- 5. Cancel before its order, across a rebalance -------------------------------------------


async def _points_of(engine: AsyncEngine, tenant: Tenant, code: str) -> int:
    return await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points")


async def test_cancel_before_its_order_across_a_rebalance_reverses_it(
    client: httpx.AsyncClient,
    workers: WorkerPool,
    engine: AsyncEngine,
    relay: subprocess.Popen[bytes],
) -> None:
    # 12 customers: their keys spread over all 4 partitions, so some parked cancels sit on
    # partitions that move from worker A to worker B.
    tenant = await create_tenant(engine, customers_count=12)
    codes = tenant.customer_codes
    for code in codes:
        await credit(engine, org_id=tenant.org_id, code=code, amount=100)
    prior = {code: await _points_of(engine, tenant, code) for code in codes}
    pairs = [(f"oc-{i}", codes[i % len(codes)]) for i in range(24)]

    cancels = []
    for ext, code in pairs:
        r = await client.post(
            f"/v1/orders/{ext}/cancel",
            json={"customer": {"type": "code", "value": code}},
            headers=tenant.headers,
        )
        assert r.status_code == 202, r.text
        cancels.append(r.json()["status_url"])

    async def statuses(urls: list[str]) -> list[str]:
        return [(await client.get(u, headers=tenant.headers)).json()["status"] for u in urls]

    workers.start()  # worker A parks every cancel
    await eventually(
        lambda: statuses(cancels),
        lambda s: all(x == "parked" for x in s),
        timeout_s=90,
        describe="cancels parked",
    )
    workers.start()  # worker B joins: a rebalance starts now

    async def post_orders(chunk: list[tuple[str, str]]) -> list[dict[str, Any]]:
        bodies = [order_body(customer_code=code, external_id=ext) for ext, code in chunk]
        r = await client.post(BATCH, json={"orders": bodies}, headers=tenant.headers)
        assert r.status_code == 202, r.text
        return r.json()["results"]  # type: ignore[no-any-return]

    # Half the orders arrive while the group rebalances, half once B owns partitions.
    results = await post_orders(pairs[::2])
    b_log = workers.log_dir / "worker-2.log"
    await eventually(
        lambda: asyncio.to_thread(b_log.read_text, errors="replace"),
        lambda t: (
            "partitions assigned {'partitions': [" in t
            and "partitions assigned {'partitions': []}" not in t
        ),
        timeout_s=60,
        describe="worker B assigned partitions",
    )
    results += await post_orders(pairs[1::2])
    orders = [r["external_id"] for r in results]
    order_urls = [r["status_url"] for r in results]
    final = await eventually(
        lambda: statuses(order_urls),
        lambda s: all(x not in ("pending", "parked", "applied") for x in s),
        timeout_s=120,
        describe="orders reversed",
    )
    assert final == ["reversed"] * len(pairs), workers.logs()
    assert "partitions assigned" in b_log.read_text(errors="replace")
    cancel_final = await eventually(
        lambda: statuses(cancels),
        lambda s: "parked" not in s and "pending" not in s,
        timeout_s=60,
        describe="cancels applied",
    )
    assert cancel_final == ["applied"] * len(pairs)
    assert {code: await _points_of(engine, tenant, code) for code in codes} == prior
    rows = await _order_rows(engine, tenant.org_id)
    assert sorted(rows) == sorted(orders)
    async with engine.connect() as conn:
        n_cancel = (
            await conn.execute(
                text(
                    "SELECT count(*), COALESCE(sum(delta), 0) FROM ledger_entries"
                    " WHERE org_id = :o AND kind = 'cancel' AND asset = 'points'"
                ),
                {"o": tenant.org_id},
            )
        ).one()
    assert tuple(n_cancel) == (len(pairs), -POINTS_PER_ORDER * len(pairs))
    await _relay_done(engine, tenant.org_id)
    await _books_clean(engine, tenant.org_id)


# --- 6. Concurrent redeems mixed with earns through the worker --------------------------------


@pytest.fixture
async def pos(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with pos_client(settings.model_copy(update={"db_pool_size": 20})) as c:
        yield c


async def test_concurrent_redeems_mixed_with_earns_never_overdraw(
    pos: httpx.AsyncClient,
    tenant: Tenant,
    workers: WorkerPool,
    engine: AsyncEngine,
    relay: subprocess.Popen[bytes],
) -> None:
    code = tenant.customer_codes[0]
    start, each = 100, 7
    await credit(engine, org_id=tenant.org_id, code=code, amount=start)
    workers.start()
    earns = [order_body(customer_code=code, external_id=f"mx-{i}") for i in range(MIXED_EARNS)]
    redeems = [
        {
            "customer": {"type": "code", "value": code},
            "card_type": "point",
            "value": each,
            "external_id": f"rd-{i}",
        }
        for i in range(REDEEMS)
    ]
    low = {"min": start}
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            low["min"] = min(low["min"], await _points_of(engine, tenant, code))
            await asyncio.sleep(0.02)

    async def earn(body: dict[str, Any]) -> httpx.Response:
        return await pos.post("/v1/orders", json=body, headers=tenant.headers)

    async def redeem(body: dict[str, Any]) -> httpx.Response:
        return await pos.post("/v1/redeem", json=body, headers=tenant.headers)

    watcher = asyncio.create_task(watch())
    try:
        # Earns stream in through the worker while the redeems race in waves; wave w starts
        # once w quarters of the earns are applied, so redeems both drain and follow refills.
        earning = asyncio.create_task(_gather(earn, earns))
        waves = 4
        per_wave = REDEEMS // waves
        responses: list[httpx.Response] = []
        for w in range(waves):
            await _wait_applied(engine, tenant.org_id, MIXED_EARNS * w // waves, 60, workers)
            responses += await _gather(redeem, redeems[w * per_wave : (w + 1) * per_wave])
        responses += await earning
        await _wait_applied(engine, tenant.org_id, MIXED_EARNS, 120, workers)
    finally:
        stop.set()
        await watcher
    by_ext = {}
    for resp in responses:
        assert resp.status_code in (200, 202, 409, 422), resp.text
    redeem_responses = [r for r in responses if r.request.url.path == "/v1/redeem"]
    assert len(redeem_responses) == REDEEMS
    for r in redeem_responses:
        ext = orjson.loads(r.request.content)["external_id"]
        by_ext[ext] = r
    ok = {e for e, r in by_ext.items() if r.status_code == 200}
    refused = {e: r for e, r in by_ext.items() if r.status_code != 200}
    assert all(r.json()["error"] == "insufficient_balance" for r in refused.values()), [
        r.text for r in list(refused.values())[:3]
    ]
    earn_responses = [r for r in responses if r.request.url.path == "/v1/orders"]
    assert [r.status_code for r in earn_responses] == [202] * MIXED_EARNS

    async with engine.connect() as conn:
        ledger = {
            r.external_id: r.delta
            for r in await conn.execute(
                text(
                    "SELECT external_id, delta FROM ledger_entries"
                    " WHERE org_id = :o AND kind = 'redeem'"
                ),
                {"o": tenant.org_id},
            )
        }
        ledger_sum = int(
            (
                await conn.execute(
                    text(
                        "SELECT COALESCE(sum(l.delta), 0) FROM ledger_entries l"
                        " JOIN customers c ON c.id = l.customer_id"
                        " WHERE l.org_id = :o AND c.code = :c AND l.asset = 'points'"
                    ),
                    {"o": tenant.org_id, "c": code},
                )
            ).scalar_one()
        )
    assert set(ledger) == ok  # every 200 is in the ledger, no refused one is
    assert len(ok) > start // each, "some redeems must have been funded by worker earns"
    assert all(d == -each for d in ledger.values())
    balance = await _points_of(engine, tenant, code)
    assert low["min"] >= 0 and balance >= 0
    assert balance == ledger_sum == start + POINTS_PER_ORDER * MIXED_EARNS - each * len(ok)
    await _exactly_once(engine, tenant.org_id, {b["external_id"] for b in earns})
    print(f"\nredeems: {len(ok)} of {REDEEMS} granted, {len(refused)} refused, min {low['min']}")
