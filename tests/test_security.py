"""Security on real services: keys stored only as hashes, no secret in any log record,
scopes enforced on every route the app serves, QR tokens unforgeable and single-lived,
revoked keys dead within the cache TTL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest_api.app import create_app
from punchline.apikeys import hash_key
from punchline.config import Settings
from tests.conftest import api_client
from tests.support.factories import (
    GENEROUS_LIMITS,
    Tenant,
    configure_org,
    create_key,
    credit,
    order_body,
    row_counts,
)
from tests.support.polling import eventually
from tests.support.pos import FakeClock, code_ref, pos_client
from tests.support.workers import WorkerPool

pytestmark = pytest.mark.asyncio(loop_scope="session")

PUBLIC = {"/healthz", "/readyz"}
# The only routes a customer_app key may call: its customer's QR code and live PIN.
CUSTOMER_APP_ROUTES = {
    ("GET", "/v1/customers/{code}/pin"),
    ("GET", "/v1/customers/{code}/qr"),
    ("GET", "/v1/customers/{code}/qr.{fmt}"),
}


# --- API keys at rest ------------------------------------------------------------------


async def _tables_with_org_id(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT table_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND column_name = 'org_id' ORDER BY 1"
            )
        )
        return [r.table_name for r in rows]


async def test_api_keys_are_stored_only_as_hashes(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    created = await client.post(
        "/v1/admin/keys", json={"name": "till", "scopes": ["pos"]}, headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    keys = [
        tenant.key,
        created.json()["key"],
        await create_key(engine, org_id=tenant.org_id, scopes=["customer_app"]),
    ]
    # Use them, so last-used bookkeeping and any request trail had a chance to store them.
    for key in keys:
        await client.get("/v1/customers/ABCDEF12/qr", headers={"X-Api-Key": key})

    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT key_hash, prefix, last4 FROM api_keys WHERE org_id = :o"),
                {"o": tenant.org_id},
            )
        ).all()
        assert {r.key_hash for r in stored} == {hash_key(k) for k in keys}
        for row in stored:
            assert len(row.prefix) < 16 and len(row.last4) == 4
        # No column of any row the org owns holds a full key, in any table.
        for table in await _tables_with_org_id(engine):
            dump = (
                await conn.execute(
                    text(
                        f"SELECT string_agg(row_to_json(t)::text, '\n') FROM {table} t"
                        " WHERE org_id = :o"
                    ),
                    {"o": tenant.org_id},
                )
            ).scalar()
            for key in keys:
                assert key not in (dump or ""), f"a full API key is stored in {table}"

    listed = await client.get("/v1/admin/keys", headers=tenant.headers)
    for key in keys:
        assert key not in listed.text and hash_key(key) not in listed.text


# --- Nothing secret in the logs ----------------------------------------------------------


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG on every logger, including those that do not propagate."""
    caplog.set_level(logging.DEBUG)
    quiet: list[logging.Logger] = []
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        caplog.set_level(logging.DEBUG, logger=name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            quiet.append(logger)
    try:
        yield caplog
    finally:
        for logger in quiet:
            logger.removeHandler(caplog.handler)


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), record.exc_text or ""]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    parts += [f"{k}={v!r}" for k, v in vars(record).items() if k not in {"msg", "args"}]
    return "\n".join(parts)


def _leaks(texts: list[str], secrets_: dict[str, str]) -> list[str]:
    found = []
    for label, secret in secrets_.items():
        if secret.isdigit():  # a PIN: only as a whole number, not inside another one
            pattern = re.compile(rf"(?<!\d){re.escape(secret)}(?!\d)")
        else:
            pattern = re.compile(re.escape(secret), re.IGNORECASE)
        found += [f"{label} in: {t[:300]!r}" for t in texts if pattern.search(t)]
    return found


@pytest.fixture
async def pin_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"pin_digits": 6})


async def test_no_api_key_pin_or_email_in_any_log_record(
    pin_settings: Settings,
    tenant: Tenant,
    engine: AsyncEngine,
    workers: WorkerPool,
    all_logs: pytest.LogCaptureFixture,
) -> None:
    await configure_org(engine, org_id=tenant.org_id, preset="balanced")
    pos_key = await create_key(
        engine, org_id=tenant.org_id, scopes=["pos"], rate_limits=GENEROUS_LIMITS
    )
    app_key = await create_key(
        engine, org_id=tenant.org_id, scopes=["customer_app"], rate_limits=GENEROUS_LIMITS
    )
    pos, app = {"X-Api-Key": pos_key}, {"Authorization": f"Bearer {app_key}"}
    email = f"Leaky.Person+{secrets.token_hex(4)}@Example.com"
    unknown_key = "sk_live_" + secrets.token_hex(16)
    workers.start()
    all_logs.clear()

    async with pos_client(pin_settings) as client:
        created_key = await client.post(
            "/v1/admin/keys", json={"name": "t", "scopes": ["pos"]}, headers=tenant.headers
        )
        assert created_key.status_code == 201
        enrolled = await client.post(
            "/v1/customers",
            json={"email": email, "consent_terms": True, "name": "Leaky Person"},
            headers=pos,
        )
        assert enrolled.status_code == 201, enrolled.text
        code = enrolled.json()["customer_code"]
        found = await client.get("/v1/customers", params={"email": email}, headers=pos)
        assert found.status_code == 200, found.text
        order = await client.post(
            "/v1/orders",
            json=order_body(customer_code=code),
            headers={**pos, "Prefer": "wait=10"},
        )
        assert order.status_code == 200 and order.json()["status"] == "applied", order.text
        await credit(engine, org_id=tenant.org_id, code=code, amount=50)
        redeem = {"customer": code_ref(code), "card_type": "point", "value": 5}
        challenge = await client.post(
            "/v1/redeem", json={**redeem, "external_id": "r-1"}, headers=pos
        )
        assert (challenge.status_code, challenge.json()["error"]) == (412, "pin_required")
        live = await client.get(f"/v1/customers/{code}/pin", headers=app)
        assert live.status_code == 200, live.text
        pin = live.json()["pin"]
        assert pin and len(pin) == 6
        wrong = str((int(pin) + 1) % 10**6).zfill(6)
        refused = await client.post(
            "/v1/redeem",
            json={**redeem, "external_id": "r-1", "verification_pin": wrong},
            headers=pos,
        )
        assert (refused.status_code, refused.json()["error"]) == (422, "pin_invalid")
        accepted = await client.post(
            "/v1/redeem",
            json={**redeem, "external_id": "r-1", "verification_pin": pin},
            headers=pos,
        )
        assert accepted.status_code == 200, accepted.text
        denied = await client.get("/v1/customers/ABCDEF12", headers={"X-Api-Key": unknown_key})
        assert denied.status_code == 401

    # The test client's own request lines (httpx) carry the query string it sent;
    # everything the server side logged is checked.
    records = [r for r in all_logs.records if not r.name.startswith(("httpx", "httpcore"))]
    assert records, "the flow logged nothing at DEBUG: the capture is not wired"
    secrets_ = {
        "admin key": tenant.key,
        "pos key": pos_key,
        "customer_app key": app_key,
        "created key": created_key.json()["key"],
        "unknown key": unknown_key,
        "email": email,
        "PIN": pin,
        "wrong PIN": wrong,
    }
    leaks = _leaks([_record_text(r) for r in records], secrets_)
    assert leaks == [], "\n".join(leaks)
    assert _leaks(workers.logs().splitlines(), secrets_) == []


# --- Scopes, on every route of the app ---------------------------------------------------


def _routes(settings: Settings) -> list[tuple[str, str, bool]]:
    """(method, path template, has a JSON body) for every operation in the OpenAPI."""
    spec = create_app(settings).openapi()
    return [
        (method.upper(), path, "requestBody" in op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def _concrete(path: str, code: str) -> str:
    values = {"code": code, "fmt": "svg"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


@pytest.fixture
async def scoped(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> AsyncIterator[dict[str, dict[str, str]]]:
    keys = {
        scope: await create_key(
            engine, org_id=tenant.org_id, scopes=[scope], rate_limits=GENEROUS_LIMITS
        )
        for scope in ("pos", "customer_app")
    }
    yield {scope: {"X-Api-Key": key} for scope, key in keys.items()}


async def _walk(
    client: httpx.AsyncClient,
    routes: list[tuple[str, str, bool]],
    headers: dict[str, str],
    code: str,
) -> dict[tuple[str, str], httpx.Response]:
    out = {}
    for method, path, has_body in routes:
        out[(method, path)] = await client.request(
            method, _concrete(path, code), json={} if has_body else None, headers=headers
        )
    return out


async def test_a_pos_key_cannot_call_any_admin_route(
    client: httpx.AsyncClient,
    settings: Settings,
    tenant: Tenant,
    engine: AsyncEngine,
    scoped: dict[str, dict[str, str]],
) -> None:
    admin = [r for r in _routes(settings) if r[1].startswith("/v1/admin/")]
    assert len(admin) >= 15, "the walk found the admin routes"
    before = await row_counts(engine, tenant.org_id)
    answers = await _walk(client, admin, scoped["pos"], tenant.customer_codes[0])
    wrong = {
        route: (r.status_code, r.text[:120])
        for route, r in answers.items()
        if (r.status_code, r.json().get("error")) != (403, "forbidden")
    }
    assert wrong == {}
    assert await row_counts(engine, tenant.org_id) == before


async def test_a_customer_app_key_can_only_read_its_customers_qr_and_pin(
    client: httpx.AsyncClient,
    settings: Settings,
    tenant: Tenant,
    engine: AsyncEngine,
    scoped: dict[str, dict[str, str]],
) -> None:
    routes = [r for r in _routes(settings) if r[1] not in PUBLIC]
    allowed = [r for r in routes if (r[0], r[1]) in CUSTOMER_APP_ROUTES]
    refused = [r for r in routes if (r[0], r[1]) not in CUSTOMER_APP_ROUTES]
    assert len(allowed) == len(CUSTOMER_APP_ROUTES), "the allowed routes still exist"
    assert any(p.startswith("/webhook/") for _, p, _ in refused)
    assert any(p.startswith("/v1/admin/") for _, p, _ in refused)
    code = tenant.customer_codes[0]
    before = await row_counts(engine, tenant.org_id)
    answers = await _walk(client, refused, scoped["customer_app"], code)
    wrong = {
        route: (r.status_code, r.text[:120])
        for route, r in answers.items()
        if (r.status_code, r.json().get("error")) != (403, "forbidden")
    }
    assert wrong == {}
    assert await row_counts(engine, tenant.org_id) == before
    ok = await _walk(client, allowed, scoped["customer_app"], code)
    assert {route: r.status_code for route, r in ok.items()} == {(m, p): 200 for m, p, _ in allowed}


# --- QR tokens ------------------------------------------------------------------------


def _resign(payload: str, secret: bytes) -> str:
    body = payload.rsplit(".", 1)[0]
    mac = hmac.new(secret, b"punchline-qr:" + body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def _with_field(payload: str, index: int, value: str) -> str:
    parts = payload.split(".")
    parts[index] = value
    return ".".join(parts)


async def test_qr_tokens_cannot_be_forged_or_replayed_past_expiry(
    settings: Settings, tenant: Tenant
) -> None:
    clock = FakeClock()
    tuned = settings.model_copy(update={"qr_ttl_s": 60})
    code, other = tenant.customer_codes[0], tenant.customer_codes[1]
    async with pos_client(tuned, clock=clock) as client:
        h = tenant.headers
        payload = (await client.get(f"/v1/customers/{code}/qr", headers=h)).json()["payload"]

        async def lookup(qr: str) -> httpx.Response:
            return await client.get("/v1/customers", params={"qr": qr}, headers=h)

        genuine = await lookup(payload)
        assert (genuine.status_code, genuine.json()["customer_code"]) == (200, code)
        sig = payload.rsplit(".", 1)[1]
        flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
        far_future = str(int(payload.split(".")[3]) + 10**6)
        forgeries = {
            "tampered signature": payload.rsplit(".", 1)[0] + "." + flipped,
            "another customer, same signature": _with_field(payload, 2, other),
            "later expiry, same signature": _with_field(payload, 3, far_future),
            "signed with a guessed secret": _resign(
                _with_field(payload, 3, far_future), b"change-me"
            ),
            "no signature": payload.rsplit(".", 1)[0],
        }
        for label, forged in forgeries.items():
            answer = await lookup(forged)
            assert (answer.status_code, answer.json()["error"]) == (422, "invalid_qr"), label

        clock.advance(seconds=59)
        assert (await lookup(payload)).status_code == 200, "still valid before expiry"
        clock.advance(seconds=2)
        replayed = await lookup(payload)
        assert (replayed.status_code, replayed.json()["error"]) == (422, "invalid_qr")


# --- Revocation -------------------------------------------------------------------------


async def test_a_revoked_key_stops_working_within_the_cache_ttl_on_every_process(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant
) -> None:
    assert settings.api_key_cache_ttl_s == 1.0
    created = await client.post(
        "/v1/admin/keys", json={"name": "till", "scopes": ["pos"]}, headers=tenant.headers
    )
    key_id, headers = created.json()["id"], {"X-Api-Key": created.json()["key"]}
    path = f"/v1/customers/{tenant.customer_codes[0]}"
    async with api_client(settings) as second, api_client(settings) as third:
        processes = [client, second, third]
        for process in processes:  # every process has the key cached as valid
            assert (await process.get(path, headers=headers)).status_code == 200
        revoked = await client.delete(f"/v1/admin/keys/{key_id}", headers=tenant.headers)
        assert revoked.status_code == 200
        for process in processes:
            answer = await eventually(
                lambda p=process: p.get(path, headers=headers),
                lambda r: r.status_code == 401,
                timeout_s=15,
                interval_s=0.1,
                describe="the revoked key refused",
            )
            assert answer.json()["error"] == "invalid or missing API key"
            assert "customer" not in answer.text
