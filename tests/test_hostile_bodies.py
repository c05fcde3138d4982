"""Hostile bodies on the write endpoints: always a 4xx in the error shape, never a 500,
and nothing written.

Each case is a raw body (bytes), so the JSON the server sees is exactly the hostile one:
deep nesting, huge arrays, 10 MB, NUL bytes, bytes that are not UTF-8, integers past 64
bits, offsets and time zones that do not exist.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import Tenant, order_body, row_counts

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEPTH = 10_000
TEN_MB = 10 * 1024 * 1024

Body = Callable[[str], bytes]  # customer code -> raw body


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def order(**changes: Any) -> Body:
    def build(code: str) -> bytes:
        body = order_body(customer_code=code, external_id="hostile-1")
        for key, value in changes.items():
            if key.startswith("line_"):
                body["lines"][0][key.removeprefix("line_")] = value
            else:
                body[key] = value
        return _json(body)

    return build


def customer(**changes: Any) -> Body:
    return lambda code: _json({"email": "hostile@example.com", "consent_terms": True, **changes})


def pos(**changes: Any) -> Body:
    return lambda code: _json(
        {"customer_code": code, "amount": 25.5, "external_id": "hostile-1", **changes}
    )


def rules(**changes: Any) -> Body:
    return lambda code: _json(changes)


def raw(data: bytes) -> Body:
    return lambda code: data


def nested_in(field: str, base: Body) -> Body:
    """``field`` replaced by a list nested DEPTH deep, the rest of the body intact."""

    def build(code: str) -> bytes:
        body = json.loads(base(code))
        body[field] = "__NEST__"
        return _json(body).replace(b'"__NEST__"', b"[" * DEPTH + b"]" * DEPTH)

    return build


def padded(base: Body, size: int) -> Body:
    """A valid body grown past ``size`` bytes by one long string field."""

    def build(code: str) -> bytes:
        body = json.loads(base(code))
        body["padding"] = "a" * size
        return _json(body)

    return build


def not_utf8(base: Body, field: str) -> Body:
    def build(code: str) -> bytes:
        body = json.loads(base(code))
        body[field] = "__BYTES__"
        return _json(body).replace(b"__BYTES__", b"\xff\xfe\xc3\x28")

    return build


HAPPY = {
    "id": "hh",
    "label": "HH",
    "multiplier": "2",
    "weekdays": ["mon"],
    "start": "08:00",
    "end": "10:00",
}
LINE = {"name": "Latte", "quantity": 1, "unit_price_cents": 100}
BONUS = {
    "id": "b",
    "label": "B",
    "kind": "multiplier",
    "multiplier": "2",
    "match": {"categories": ["drinks"]},
}

ORDERS, CUSTOMERS, POS, RULES = "/v1/orders", "/v1/customers", "/webhook/pos", "/v1/admin/rules"
NEST_TOP = raw(b"[" * DEPTH + b"]" * DEPTH)
NEST_OBJ = raw(b'{"a":' * DEPTH + b"1" + b"}" * DEPTH)

CASES = [
    # deep nesting
    *[
        pytest.param(m, p, NEST_TOP, id=f"{p} nested list {DEPTH} deep")
        for m, p in [("POST", ORDERS), ("POST", CUSTOMERS), ("POST", POS), ("PUT", RULES)]
    ],
    *[
        pytest.param(m, p, NEST_OBJ, id=f"{p} nested object {DEPTH} deep")
        for m, p in [("POST", ORDERS), ("POST", CUSTOMERS), ("POST", POS), ("PUT", RULES)]
    ],
    pytest.param("POST", ORDERS, nested_in("lines", order()), id="order lines nested"),
    pytest.param("POST", CUSTOMERS, nested_in("name", customer()), id="customer name nested"),
    pytest.param("POST", POS, nested_in("amount", pos()), id="pos amount nested"),
    pytest.param("PUT", RULES, nested_in("bonuses", rules()), id="rules bonuses nested"),
    # huge arrays
    pytest.param("POST", ORDERS, order(lines=[LINE] * 501), id="order 501 lines"),
    pytest.param("POST", ORDERS, order(lines=[{}] * 100_000), id="order 100k empty lines"),
    pytest.param("POST", CUSTOMERS, customer(name=["x"] * 100_000), id="customer name array"),
    pytest.param("POST", POS, pos(amount=[1] * 100_000), id="pos amount array"),
    pytest.param("PUT", RULES, rules(bonuses=[BONUS] * 201), id="rules 201 bonuses"),
    pytest.param("PUT", RULES, rules(happy_hours=[{}] * 100_000), id="rules 100k happy hours"),
    # 10 MB
    *[
        pytest.param(m, p, padded(b, TEN_MB), id=f"{p} 10 MB")
        for m, p, b in [
            ("POST", ORDERS, order()),
            ("POST", CUSTOMERS, customer()),
            ("POST", POS, pos()),
            ("PUT", RULES, rules()),
        ]
    ],
    # NUL bytes
    pytest.param("POST", ORDERS, order(external_id="o-\u0000-1"), id="order NUL external_id"),
    pytest.param("POST", ORDERS, order(line_name="Lat\u0000te"), id="order NUL line name"),
    pytest.param("POST", ORDERS, order(store_id="s\u0000"), id="order NUL store"),
    pytest.param("POST", CUSTOMERS, customer(name="Ann\u0000Lee"), id="customer NUL name"),
    pytest.param(
        "POST", CUSTOMERS, customer(email="a\u0000b@example.com"), id="customer NUL email"
    ),
    pytest.param("POST", POS, pos(external_id="p-\u0000"), id="pos NUL external_id"),
    pytest.param(
        "PUT", RULES, rules(bonuses=[{**BONUS, "label": "B\u0000"}]), id="rules NUL label"
    ),
    # not UTF-8, and a lone surrogate escape
    pytest.param("POST", ORDERS, not_utf8(order(), "store_id"), id="order not utf-8"),
    pytest.param("POST", CUSTOMERS, not_utf8(customer(), "name"), id="customer not utf-8"),
    pytest.param("POST", POS, not_utf8(pos(), "external_id"), id="pos not utf-8"),
    pytest.param("PUT", RULES, raw(b'{"bonuses": "\xff\xfe"}'), id="rules not utf-8"),
    pytest.param("POST", CUSTOMERS, customer(name="\ud800"), id="customer lone surrogate"),
    pytest.param("POST", ORDERS, order(external_id="o-\udfff"), id="order lone surrogate"),
    # integers past 64 bits
    pytest.param("POST", ORDERS, order(line_unit_price_cents=2**63), id="order price 2**63"),
    pytest.param("POST", ORDERS, order(line_unit_price_cents=10**30), id="order price 10**30"),
    pytest.param("POST", ORDERS, order(line_discount_cents=-(2**63) - 1), id="order disc -2**63"),
    pytest.param("POST", ORDERS, order(line_quantity=2**63), id="order quantity 2**63"),
    pytest.param("POST", ORDERS, order(amount_cents=2**63), id="order amount 2**63"),
    pytest.param("POST", ORDERS, order(amount_cents=10**30), id="order amount 10**30"),
    pytest.param(
        "POST",
        ORDERS,
        order(lines=[{**LINE, "unit_price_cents": 2**62, "quantity": 4}]),
        id="order line total overflows 64 bits",
    ),
    pytest.param("POST", POS, pos(amount=2**63), id="pos amount 2**63"),
    pytest.param("POST", POS, pos(amount=10**30), id="pos amount 10**30"),
    pytest.param("POST", POS, raw(b'{"customer_code": "ABCDEF12", "amount": 1e400}'), id="pos inf"),
    pytest.param("PUT", RULES, rules(min_amount_cents=2**63), id="rules min amount 2**63"),
    pytest.param("PUT", RULES, rules(caps={"per_order": 10**30}), id="rules cap 10**30"),
    # times and zones that do not exist
    pytest.param(
        "POST", ORDERS, order(occurred_at="2026-11-02T09:30:00+99:00"), id="offset +99:00"
    ),
    pytest.param(
        "POST", ORDERS, order(occurred_at="2026-11-02T09:30:00+24:00"), id="offset +24:00"
    ),
    pytest.param(
        "POST", ORDERS, order(occurred_at="9999-12-31T23:59:59-23:59"), id="UTC after year 9999"
    ),
    pytest.param(
        "POST", ORDERS, order(occurred_at="0001-01-01T00:00:00+23:59"), id="UTC before year 1"
    ),
    pytest.param("POST", ORDERS, order(occurred_at="2026-02-30T09:30:00Z"), id="30 February"),
    pytest.param("POST", ORDERS, order(occurred_at="2026-11-02T09:30:00"), id="naive time"),
    pytest.param(
        "PUT",
        RULES,
        rules(happy_hours=[{**HAPPY, "timezone": "Mars/Olympus_Mons"}]),
        id="rules bogus zone",
    ),
    pytest.param(
        "PUT",
        RULES,
        rules(happy_hours=[{**HAPPY, "timezone": "../../../etc/passwd"}]),
        id="rules zone path traversal",
    ),
    *[
        pytest.param("PATCH", "/v1/admin/org", rules(timezone=zone), id=f"org zone {label}")
        for zone, label in [
            ("Mars/Olympus_Mons", "bogus"),
            ("../../../etc/passwd", "path traversal"),
            ("/usr/share/zoneinfo/UTC", "absolute path"),
            ("Europe/Dublin\u0000", "NUL"),
            ("", "empty"),
            ("x" * 65, "too long"),
        ]
    ],
]


async def _snapshot(engine: AsyncEngine, org_id: uuid.UUID) -> dict[str, Any]:
    counts: dict[str, Any] = await row_counts(engine, org_id)
    async with engine.connect() as conn:
        counts["rule_sets"] = (
            await conn.execute(
                text("SELECT count(*) FROM rule_sets WHERE org_id = :o"), {"o": org_id}
            )
        ).scalar_one()
        counts["org"] = tuple(
            (await conn.execute(text("SELECT * FROM orgs WHERE id = :o"), {"o": org_id})).one()
        )
    return counts


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    yield client


@pytest.mark.parametrize(("method", "path", "body"), CASES)
async def test_hostile_body_gets_a_4xx_error_and_writes_nothing(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    method: str,
    path: str,
    body: Body,
) -> None:
    before = await _snapshot(engine, tenant.org_id)
    response = await client.request(
        method,
        path,
        content=body(tenant.customer_codes[0]),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    payload = response.json()
    assert isinstance(payload, dict) and isinstance(payload.get("error"), str), payload
    assert await _snapshot(engine, tenant.org_id) == before


async def test_a_chunked_10_mb_body_without_length_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"padding": "'
        for _ in range(10):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    before = await _snapshot(engine, tenant.org_id)
    response = await client.post(
        CUSTOMERS,
        content=chunks(),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")
    assert await _snapshot(engine, tenant.org_id) == before


async def test_the_happy_path_bodies_are_accepted(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The builders above make valid bodies until they are made hostile: each hostile
    case fails for its hostility, not for a broken base body."""
    code = tenant.customer_codes[0]
    h = {**tenant.headers, "Content-Type": "application/json"}
    assert (await client.put(RULES, content=rules()(code), headers=h)).status_code == 200
    assert (await client.post(CUSTOMERS, content=customer()(code), headers=h)).status_code in (
        200,
        201,
    )
    assert (await client.post(ORDERS, content=order()(code), headers=h)).status_code == 202
    for valid in (
        rules(happy_hours=[{**HAPPY, "timezone": "Europe/Dublin"}]),
        rules(bonuses=[BONUS]),
        rules(min_amount_cents=100, caps={"per_order": 1000}),
    ):
        put = await client.put(RULES, content=valid(code), headers=h)
        assert put.status_code == 200, put.text
    patched = await client.patch(
        "/v1/admin/org", content=rules(timezone="Asia/Tokyo")(code), headers=h
    )
    assert patched.status_code == 200
