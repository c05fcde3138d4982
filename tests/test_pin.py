"""The PIN challenge state machine of the Balanced and Strict presets."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.support.factories import (
    Tenant,
    configure_org,
    create_coupon,
    create_key,
    credit,
    wallet_balance,
)
from tests.support.pos import FakeClock, code_ref, pos_client

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def pos(settings: Settings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with pos_client(settings, clock) as client:
        yield client


@pytest.fixture
async def app_headers(engine: AsyncEngine, tenant: Tenant) -> dict[str, str]:
    return {"X-Api-Key": await create_key(engine, org_id=tenant.org_id, scopes=["customer_app"])}


async def _balanced(engine: AsyncEngine, tenant: Tenant, points: int = 100) -> str:
    await configure_org(engine, org_id=tenant.org_id, preset="balanced")
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=points)
    return code


def _redeem(code: str, value: int = 10, pin: str | None = None, ext: str | None = None) -> dict:
    body: dict[str, object] = {
        "customer": code_ref(code),
        "card_type": "point",
        "value": value,
        "external_id": ext or f"r-{secrets.token_hex(5)}",
    }
    if pin is not None:
        body["verification_pin"] = pin
    return body


async def _pin(pos: httpx.AsyncClient, code: str, headers: dict[str, str]) -> str:
    response = await pos.get(f"/v1/customers/{code}/pin", headers=headers)
    assert response.status_code == 200, response.text
    pin = response.json()["pin"]
    assert isinstance(pin, str)
    return pin


def _wrong(pin: str) -> str:
    return str((int(pin) + 1) % 10 ** len(pin)).zfill(len(pin))


async def test_pin_required_then_right_pin_redeems(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, app_headers: dict[str, str]
) -> None:
    code = await _balanced(engine, tenant)
    body = _redeem(code)
    challenge = await pos.post("/v1/redeem", json=body, headers=tenant.headers)
    assert challenge.status_code == 412, challenge.text
    err = challenge.json()
    assert err["error"] == "pin_required" and err["remaining_attempts"] == 3
    uuid.UUID(err["challenge_id"])

    shown = (await pos.get(f"/v1/customers/{code}/pin", headers=app_headers)).json()
    assert shown["pins"][0]["challenge_id"] == err["challenge_id"]
    assert shown["pins"][0]["action"] == "redeem"
    pin = shown["pin"]
    assert len(pin) == 4 and pin.isdigit()

    ok = await pos.post(
        "/v1/redeem", json={**body, "verification_pin": pin}, headers=tenant.headers
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["balances"]["points"] == 90
    after = (await pos.get(f"/v1/customers/{code}/pin", headers=app_headers)).json()
    assert after == {"customer_code": code, "pin": None, "pins": []}

    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT pin_hash, consumed_at FROM pin_challenges WHERE id = :id"),
                {"id": err["challenge_id"]},
            )
        ).one()
        issued = (
            await conn.execute(
                text(
                    "SELECT payload::text FROM outbox WHERE org_id = :org"
                    " AND event_type = 'pin.issued'"
                ),
                {"org": tenant.org_id},
            )
        ).scalar_one()
    assert stored.consumed_at is not None
    assert pin not in stored.pin_hash and len(stored.pin_hash) == 64
    assert err["challenge_id"] in issued and f'"{pin}"' not in issued


async def test_wrong_pins_then_exhaustion_then_a_fresh_challenge(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, app_headers: dict[str, str]
) -> None:
    code = await _balanced(engine, tenant)
    body = _redeem(code)
    first = (await pos.post("/v1/redeem", json=body, headers=tenant.headers)).json()
    pin = await _pin(pos, code, app_headers)
    seen = []
    for _ in range(3):
        response = await pos.post(
            "/v1/redeem", json={**body, "verification_pin": _wrong(pin)}, headers=tenant.headers
        )
        assert response.status_code == 422
        seen.append((response.json()["error"], response.json()["remaining_attempts"]))
        assert response.json()["challenge_id"] == first["challenge_id"]
    assert seen == [("pin_invalid", 2), ("pin_invalid", 1), ("pin_attempts_exceeded", 0)]
    late = await pos.post(
        "/v1/redeem", json={**body, "verification_pin": pin}, headers=tenant.headers
    )
    assert late.json()["error"] == "pin_attempts_exceeded"
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 100

    fresh = (await pos.post("/v1/redeem", json=body, headers=tenant.headers)).json()
    assert fresh["error"] == "pin_required" and fresh["challenge_id"] != first["challenge_id"]
    new_pin = await _pin(pos, code, app_headers)
    ok = await pos.post(
        "/v1/redeem", json={**body, "verification_pin": new_pin}, headers=tenant.headers
    )
    assert ok.status_code == 200, ok.text


async def test_expired_challenge_then_a_fresh_one(
    pos: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    app_headers: dict[str, str],
    clock: FakeClock,
) -> None:
    code = await _balanced(engine, tenant)
    body = _redeem(code)
    await pos.post("/v1/redeem", json=body, headers=tenant.headers)
    pin = await _pin(pos, code, app_headers)
    clock.advance(seconds=300)
    expired = await pos.post(
        "/v1/redeem", json={**body, "verification_pin": pin}, headers=tenant.headers
    )
    assert (expired.status_code, expired.json()["error"]) == (422, "pin_expired")
    shown = (await pos.get(f"/v1/customers/{code}/pin", headers=app_headers)).json()
    assert shown["pin"] is None
    again = await pos.post("/v1/redeem", json=body, headers=tenant.headers)
    assert again.status_code == 412
    clock.advance(seconds=299)
    ok = await pos.post(
        "/v1/redeem",
        json={**body, "verification_pin": await _pin(pos, code, app_headers)},
        headers=tenant.headers,
    )
    assert ok.status_code == 200, ok.text


async def test_pins_are_strings_leading_zeros_count(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, app_headers: dict[str, str]
) -> None:
    code = await _balanced(engine, tenant)
    body = _redeem(code)
    await pos.post("/v1/redeem", json=body, headers=tenant.headers)
    pin = await _pin(pos, code, app_headers)
    variant = str(int(pin)) if pin.startswith("0") else "0" + pin
    wrong = await pos.post(
        "/v1/redeem", json={**body, "verification_pin": variant}, headers=tenant.headers
    )
    assert wrong.json()["error"] == "pin_invalid"
    as_number = await pos.post(
        "/v1/redeem", json={**body, "verification_pin": int(pin)}, headers=tenant.headers
    )
    assert (as_number.status_code, as_number.json()["error"]) == (422, "validation_error")
    ok = await pos.post(
        "/v1/redeem", json={**body, "verification_pin": pin}, headers=tenant.headers
    )
    assert ok.status_code == 200


async def test_a_refused_redeem_leaves_the_verified_pin_usable(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, app_headers: dict[str, str]
) -> None:
    code = await _balanced(engine, tenant, points=20)
    await pos.post("/v1/redeem", json=_redeem(code, 50), headers=tenant.headers)
    pin = await _pin(pos, code, app_headers)
    too_much = await pos.post("/v1/redeem", json=_redeem(code, 50, pin), headers=tenant.headers)
    assert too_much.json()["error"] == "insufficient_balance"
    ok = await pos.post("/v1/redeem", json=_redeem(code, 20, pin), headers=tenant.headers)
    assert ok.status_code == 200, ok.text
    spent = await pos.post("/v1/redeem", json=_redeem(code, 1, pin), headers=tenant.headers)
    assert spent.status_code == 412  # a spent challenge is never reused


async def test_parallel_guesses_use_at_most_three_attempts(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, app_headers: dict[str, str]
) -> None:
    code = await _balanced(engine, tenant)
    challenge = (await pos.post("/v1/redeem", json=_redeem(code), headers=tenant.headers)).json()
    pin = await _pin(pos, code, app_headers)
    guesses = [str(n).zfill(4) for n in range(10_000) if str(n).zfill(4) != pin][:30]
    responses = await asyncio.gather(
        *(pos.post("/v1/redeem", json=_redeem(code, 1, g), headers=tenant.headers) for g in guesses)
    )
    errors = sorted(r.json()["error"] for r in responses)
    assert errors.count("pin_invalid") == 2
    assert errors.count("pin_attempts_exceeded") == 28
    async with engine.connect() as conn:
        attempts = (
            await conn.execute(
                text("SELECT attempts FROM pin_challenges WHERE id = :id"),
                {"id": challenge["challenge_id"]},
            )
        ).scalar_one()
    assert attempts == 3
    assert await wallet_balance(engine, org_id=tenant.org_id, code=code, asset="points") == 100


async def test_a_challenge_binds_its_customer_and_action(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, app_headers: dict[str, str]
) -> None:
    code = await _balanced(engine, tenant)
    other = tenant.customer_codes[1]
    await credit(engine, org_id=tenant.org_id, code=other, amount=100)
    await pos.post("/v1/redeem", json=_redeem(code), headers=tenant.headers)
    pin = await _pin(pos, code, app_headers)
    # The same PIN for another customer: that customer has no challenge, so one is issued.
    foreign = await pos.post("/v1/redeem", json=_redeem(other, 1, pin), headers=tenant.headers)
    assert foreign.json()["error"] == "pin_required"
    # The same PIN for another action of the same customer.
    token = await create_coupon(engine, org_id=tenant.org_id, code=code)
    coupon = await pos.post(
        "/v1/coupons/redeem",
        json={"token": token, "verification_pin": pin},
        headers=tenant.headers,
    )
    assert coupon.json()["error"] == "pin_required"
    ok = await pos.post("/v1/redeem", json=_redeem(code, 1, pin), headers=tenant.headers)
    assert ok.status_code == 200, ok.text


async def test_balanced_gates_coupon_redeem(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, app_headers: dict[str, str]
) -> None:
    code = await _balanced(engine, tenant)
    token = await create_coupon(engine, org_id=tenant.org_id, code=code)
    first = await pos.post("/v1/coupons/redeem", json={"token": token}, headers=tenant.headers)
    assert first.status_code == 412
    pin = await _pin(pos, code, app_headers)
    ok = await pos.post(
        "/v1/coupons/redeem", json={"token": token, "verification_pin": pin}, headers=tenant.headers
    )
    assert ok.status_code == 200 and ok.json()["status"] == "redeemed"


@pytest.mark.parametrize(
    ("preset", "gated"),
    [
        pytest.param("standard", False, id="standard"),
        pytest.param("balanced", False, id="balanced"),
        pytest.param("strict", True, id="strict"),
    ],
)
async def test_only_strict_gates_earn(
    pos: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    app_headers: dict[str, str],
    preset: str,
    gated: bool,
) -> None:
    await configure_org(engine, org_id=tenant.org_id, preset=preset)
    code = tenant.customer_codes[0]
    body = {
        "customer": code_ref(code),
        "card_type": "point",
        "amount_cents": 1000,
        "external_id": f"e-{secrets.token_hex(5)}",
    }
    first = await pos.post("/v1/earn", json=body, headers=tenant.headers)
    if not gated:
        assert first.status_code == 202, first.text
        return
    assert (first.status_code, first.json()["error"]) == (412, "pin_required")
    pin = await _pin(pos, code, app_headers)
    ok = await pos.post("/v1/earn", json={**body, "verification_pin": pin}, headers=tenant.headers)
    assert ok.status_code == 202, ok.text


@pytest.mark.parametrize(
    ("preset", "refused"),
    [
        pytest.param("standard", False, id="standard"),
        pytest.param("balanced", False, id="balanced"),
        pytest.param("strict", True, id="strict"),
    ],
)
async def test_strict_refuses_manual_codes(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, preset: str, refused: bool
) -> None:
    await configure_org(engine, org_id=tenant.org_id, preset=preset)
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=10)
    response = await pos.post(
        "/v1/redeem", json={**_redeem(code, 1), "manual_code": True}, headers=tenant.headers
    )
    if refused:
        assert (response.status_code, response.json()["error"]) == (422, "manual_code_disabled")
    else:
        assert response.status_code in (200, 412), response.text


async def test_only_customer_app_keys_read_pins(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = await _balanced(engine, tenant)
    await pos.post("/v1/redeem", json=_redeem(code), headers=tenant.headers)
    admin = await pos.get(f"/v1/customers/{code}/pin", headers=tenant.headers)  # pos + admin
    assert (admin.status_code, admin.json()["error"]) == (403, "forbidden")
    nobody = await pos.get(f"/v1/customers/{code}/pin")
    assert nobody.status_code == 401


async def test_challenge_issuance_is_rate_limited_per_customer(
    settings: Settings, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = await _balanced(engine, tenant)
    async with pos_client(settings.model_copy(update={"pin_issue_limit": "2/hour"})) as pos:
        statuses = [
            (await pos.post("/v1/redeem", json=_redeem(code), headers=tenant.headers)).status_code
            for _ in range(3)
        ]
        assert statuses == [412, 412, 429]
        other = tenant.customer_codes[1]
        await credit(engine, org_id=tenant.org_id, code=other, amount=5)
        assert (
            await pos.post("/v1/redeem", json=_redeem(other, 1), headers=tenant.headers)
        ).status_code == 412
