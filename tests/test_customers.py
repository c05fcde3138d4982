"""Enrolment, look-ups, search and the signed QR code, over HTTP on real Postgres."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.support.factories import Tenant, create_key, create_tenant, credit, set_customer
from tests.support.pos import FakeClock, pos_client

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def pos(settings: Settings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with pos_client(settings, clock) as client:
        yield client


def _email() -> str:
    return f"Sophie.{secrets.token_hex(3)}@Example.com"


async def _enroll(pos: httpx.AsyncClient, tenant: Tenant, **body: object) -> httpx.Response:
    payload: dict[str, object] = {"email": _email(), "consent_terms": True}
    payload.update(body)
    return await pos.post("/v1/customers", json=payload, headers=tenant.headers)


async def test_enrol_new_customer(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    email = _email()
    response = await _enroll(
        pos, tenant, email=email, consent_privacy=True, name="Sophie", phone="085 123 4567"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["is_new"] is True
    assert re.fullmatch(r"[0-9A-F]{8}", body["customer_code"])
    assert body["masked_email"] == f"S***@{email.split('@')[1]}"
    assert body["phone"] == "+353851234567"
    assert (body["point_balance"], body["stamp_count"]) == (0, 0)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT consent_terms_at, consent_privacy_at FROM customers"
                    " WHERE org_id = :org AND code = :code"
                ),
                {"org": tenant.org_id, "code": body["customer_code"]},
            )
        ).one()
        events = (
            await conn.execute(
                text(
                    "SELECT payload FROM outbox WHERE org_id = :org"
                    " AND event_type = 'customer.enrolled'"
                ),
                {"org": tenant.org_id},
            )
        ).all()
    assert row.consent_terms_at is not None and row.consent_privacy_at is not None
    assert [e.payload["customer_code"] for e in events] == [body["customer_code"]]


async def test_existing_email_returns_the_existing_customer(
    pos: httpx.AsyncClient, tenant: Tenant
) -> None:
    email = _email()
    first = await _enroll(pos, tenant, email=email)
    again = await _enroll(pos, tenant, email=email.upper())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["is_new"] is False
    assert again.json()["customer_code"] == first.json()["customer_code"]


async def test_concurrent_enrolments_of_one_email_make_one_customer(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    email = _email()
    responses = await asyncio.gather(*(_enroll(pos, tenant, email=email) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["customer_code"] for r in responses}) == 1
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM customers WHERE org_id = :org AND lower(email) = :e"),
                {"org": tenant.org_id, "e": email.lower()},
            )
        ).scalar_one()
    assert count == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"email": None}, "email_required", id="no email"),
        pytest.param({"email": ""}, "email_required", id="empty email"),
        pytest.param({"consent_terms": None}, "consent_terms_required", id="no consent"),
        pytest.param({"consent_terms": False}, "consent_terms_required", id="consent refused"),
        pytest.param({"email": "not-an-email"}, "validation_error", id="malformed email"),
        pytest.param({"phone": "12345"}, "validation_error", id="invalid phone"),
        pytest.param({"phone": "+1 415"}, "validation_error", id="short phone"),
        pytest.param({"birthday": "2999-01-01"}, "validation_error", id="future birthday"),
        pytest.param({"consent_terms": "yes"}, "validation_error", id="consent as string"),
        pytest.param({"nickname": "x"}, "validation_error", id="unknown field"),
    ],
)
async def test_enrolment_refusals(
    pos: httpx.AsyncClient, tenant: Tenant, body: dict[str, object], code: str
) -> None:
    payload: dict[str, object] = {"email": _email(), "consent_terms": True, **body}
    payload = {k: v for k, v in payload.items() if v is not None}
    response = await pos.post("/v1/customers", json=payload, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == code


async def test_look_ups(pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine) -> None:
    email = _email()
    enrolled = (await _enroll(pos, tenant, email=email, phone="+447911123456")).json()
    code = enrolled["customer_code"]
    await credit(engine, org_id=tenant.org_id, code=code, amount=40)
    await credit(engine, org_id=tenant.org_id, code=code, amount=3, asset="stamps:default")
    h = tenant.headers
    by_path = (await pos.get(f"/v1/customers/{code.lower()}", headers=h)).json()
    assert (by_path["customer_code"], by_path["point_balance"], by_path["stamp_count"]) == (
        code,
        40,
        3,
    )
    for query in (
        {"email": email.lower()},
        {"phone": "+44 7911 123456"},
        {"code": code},
    ):
        response = await pos.get("/v1/customers", params=query, headers=h)
        assert response.status_code == 200, (query, response.text)
        assert response.json()["customer_code"] == code


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        pytest.param("/v1/customers/ABCDEF99", {}, 404, "customer_not_found", id="unknown code"),
        pytest.param("/v1/customers/XYZ", {}, 422, "validation_error", id="bad code"),
        pytest.param(
            "/v1/customers",
            {"email": "nobody@example.com"},
            404,
            "customer_not_found",
            id="unknown email",
        ),
        pytest.param("/v1/customers", {}, 422, "validation_error", id="no query"),
        pytest.param(
            "/v1/customers",
            {"email": "a@example.com", "code": "ABCDEF12"},
            422,
            "validation_error",
            id="two queries",
        ),
        pytest.param("/v1/customers", {"email": "nope"}, 422, "validation_error", id="bad email"),
        pytest.param("/v1/customers", {"phone": "12"}, 422, "validation_error", id="bad phone"),
        pytest.param("/v1/customers", {"qr": "garbage"}, 422, "invalid_qr", id="garbage qr"),
        pytest.param("/v1/customers/search", {"q": ""}, 422, "validation_error", id="empty q"),
        pytest.param(
            "/v1/customers/search", {"q": "a", "limit": 0}, 422, "validation_error", id="limit 0"
        ),
    ],
)
async def test_look_up_refusals(
    pos: httpx.AsyncClient,
    tenant: Tenant,
    path: str,
    params: dict[str, object],
    status: int,
    code: str,
) -> None:
    response = await pos.get(path, params=params, headers=tenant.headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


async def test_search_by_name_and_phone_is_paginated(
    pos: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tenant = await create_tenant(engine, customers_count=0)
    tag = secrets.token_hex(2)
    for i in range(5):
        await _enroll(pos, tenant, name=f"Anna {tag} {i}", phone=f"+35385123450{i}")
    await _enroll(pos, tenant, name="Bob")
    h = tenant.headers
    first = (
        await pos.get("/v1/customers/search", params={"q": f"anna {tag}", "limit": 2}, headers=h)
    ).json()
    assert first["pagination"] == {"page": 1, "limit": 2, "total": 5}
    assert [c["name"] for c in first["customers"]] == [f"Anna {tag} 0", f"Anna {tag} 1"]
    last = (
        await pos.get(
            "/v1/customers/search", params={"q": f"anna {tag}", "limit": 2, "page": 3}, headers=h
        )
    ).json()
    assert [c["name"] for c in last["customers"]] == [f"Anna {tag} 4"]
    by_phone = (await pos.get("/v1/customers/search", params={"q": "85 1234503"}, headers=h)).json()
    assert [c["name"] for c in by_phone["customers"]] == [f"Anna {tag} 3"]
    nothing = (await pos.get("/v1/customers/search", params={"q": "100%_"}, headers=h)).json()
    assert nothing["pagination"]["total"] == 0


async def test_qr_round_trip_and_refusals(
    pos: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    h = tenant.headers
    qr = (await pos.get(f"/v1/customers/{code}/qr", headers=h)).json()
    assert qr["customer_code"] == code
    found = await pos.get("/v1/customers", params={"qr": qr["payload"]}, headers=h)
    assert found.status_code == 200 and found.json()["customer_code"] == code

    forged = qr["payload"][:-2] + ("AA" if not qr["payload"].endswith("AA") else "BB")
    other_code = qr["payload"].replace(code, tenant.customer_codes[1])
    other = await create_tenant(engine, customers_count=0)
    for payload in (forged, other_code):
        response = await pos.get("/v1/customers", params={"qr": payload}, headers=h)
        assert (response.status_code, response.json()["error"]) == (422, "invalid_qr")
    foreign = await pos.get("/v1/customers", params={"qr": qr["payload"]}, headers=other.headers)
    assert (foreign.status_code, foreign.json()["error"]) == (422, "invalid_qr")

    clock.advance(hours=23, minutes=59)
    still = await pos.get("/v1/customers", params={"qr": qr["payload"]}, headers=h)
    assert still.status_code == 200
    clock.advance(minutes=1)
    expired = await pos.get("/v1/customers", params={"qr": qr["payload"]}, headers=h)
    assert (expired.status_code, expired.json()["error"]) == (422, "invalid_qr")


async def test_qr_renders_svg_and_png_for_pos_and_customer_app_keys(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    app_key = await create_key(engine, org_id=tenant.org_id, scopes=["customer_app"])
    for headers in (tenant.headers, {"X-Api-Key": app_key}):
        svg = await pos.get(f"/v1/customers/{code}/qr.svg", headers=headers)
        assert svg.status_code == 200, svg.text
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in svg.content
        png = await pos.get(f"/v1/customers/{code}/qr.png", headers=headers)
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
    gif = await pos.get(f"/v1/customers/{code}/qr.gif", headers=tenant.headers)
    assert gif.status_code == 422
    missing = await pos.get("/v1/customers/ABCDEF99/qr", headers=tenant.headers)
    assert missing.status_code == 404


async def test_customer_app_key_cannot_use_pos_endpoints(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    app_key = await create_key(engine, org_id=tenant.org_id, scopes=["customer_app"])
    response = await pos.get(
        f"/v1/customers/{tenant.customer_codes[0]}", headers={"X-Api-Key": app_key}
    )
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")


async def test_blocked_customer_is_visible_with_its_status(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    code = tenant.customer_codes[0]
    await set_customer(engine, org_id=tenant.org_id, code=code, status="BLOCKED")
    body = (await pos.get(f"/v1/customers/{code}", headers=tenant.headers)).json()
    assert body["status"] == "BLOCKED"


async def test_customers_of_another_org_are_invisible(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    other = await create_tenant(engine, customers_count=0)
    response = await pos.get(f"/v1/customers/{tenant.customer_codes[0]}", headers=other.headers)
    assert response.status_code == 404
    assert uuid.UUID(str(other.org_id)) != tenant.org_id
