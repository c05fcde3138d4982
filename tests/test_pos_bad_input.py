"""Every POS endpoint's bad input: a clear 4xx in the error shape, and nothing written."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from schemas.webhook import PosEarnIn
from tests.support.factories import Tenant, create_coupon, credit, row_counts, set_customer
from tests.support.pos import pos_client

# No module-wide asyncio mark: asyncio_mode=auto runs the async tests on the session loop,
# and the hypothesis properties below are plain functions.

CODE = "{code}"  # replaced by a real customer code of the test's org
TOKEN = "{token}"  # replaced by a real coupon token

POS = {"customer_code": CODE, "amount": 25.5, "card_type": "point", "external_id": "o-1"}
WREDEEM = {"customer_code": CODE, "value": 5, "card_type": "point", "external_id": "r-1"}
ENROL = {"email": "new@example.com", "consent_terms": True}
REF = {"type": "code", "value": CODE}
EARN = {"customer": REF, "card_type": "point", "amount_cents": 100, "external_id": "e-1"}
REDEEM = {"customer": REF, "card_type": "point", "value": 5, "external_id": "r-2"}
REDEMPTION = {
    "customer": REF,
    "reward_id": "7d3c1e9a-1111-4a4a-9b9b-000000000000",
    "external_id": "rw-1",
}


def with_(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_DROP = object()
V = "validation_error"

CASES = [
    # POST /webhook/pos
    pytest.param("POST", "/webhook/pos", with_(POS, amount=-1), 422, V, id="pos negative"),
    pytest.param("POST", "/webhook/pos", with_(POS, amount=0), 422, V, id="pos zero"),
    pytest.param("POST", "/webhook/pos", with_(POS, amount=1.005), 422, V, id="pos 3 decimals"),
    pytest.param("POST", "/webhook/pos", with_(POS, amount="25.5"), 422, V, id="pos string"),
    pytest.param("POST", "/webhook/pos", with_(POS, amount=True), 422, V, id="pos bool"),
    pytest.param("POST", "/webhook/pos", with_(POS, amount=1e20), 422, V, id="pos huge"),
    pytest.param("POST", "/webhook/pos", with_(POS, amount=10**30), 422, V, id="pos huge int"),
    pytest.param("POST", "/webhook/pos", with_(POS, amount=_DROP), 422, V, id="pos no amount"),
    pytest.param(
        "POST", "/webhook/pos", with_(POS, card_type="stamp", amount=2.5), 422, V, id="stamps float"
    ),
    pytest.param(
        "POST", "/webhook/pos", with_(POS, card_type="stamp", amount=0), 422, V, id="stamps zero"
    ),
    pytest.param(
        "POST",
        "/webhook/pos",
        with_(POS, card_type="stamp", amount=10_001),
        422,
        V,
        id="stamps huge",
    ),
    pytest.param("POST", "/webhook/pos", with_(POS, card_type="coin"), 422, V, id="pos card"),
    pytest.param(
        "POST", "/webhook/pos", with_(POS, customer_code="XYZ"), 422, V, id="pos bad code"
    ),
    pytest.param(
        "POST", "/webhook/pos", with_(POS, customer_code=12345678), 422, V, id="pos code number"
    ),
    pytest.param("POST", "/webhook/pos", with_(POS, store="x"), 422, V, id="pos unknown field"),
    pytest.param(
        "POST", "/webhook/pos", with_(POS, verification_pin=1234), 422, V, id="pos pin number"
    ),
    pytest.param(
        "POST", "/webhook/pos", with_(POS, verification_pin="12a4"), 422, V, id="pos pin letters"
    ),
    pytest.param("POST", "/webhook/pos", with_(POS, external_id="a b"), 422, V, id="pos ext"),
    pytest.param("POST", "/webhook/pos", with_(POS, manual_code="yes"), 422, V, id="pos manual"),
    pytest.param(
        "POST",
        "/webhook/pos",
        with_(POS, customer_code="ABCDEF99"),
        404,
        "customer_not_found",
        id="pos unknown customer",
    ),
    # POST /webhook/redeem
    pytest.param("POST", "/webhook/redeem", with_(WREDEEM, value=0), 422, V, id="redeem zero"),
    pytest.param("POST", "/webhook/redeem", with_(WREDEEM, value=-5), 422, V, id="redeem neg"),
    pytest.param("POST", "/webhook/redeem", with_(WREDEEM, value=1.5), 422, V, id="redeem float"),
    pytest.param("POST", "/webhook/redeem", with_(WREDEEM, value="5"), 422, V, id="redeem str"),
    pytest.param("POST", "/webhook/redeem", with_(WREDEEM, value=10**10), 422, V, id="redeem huge"),
    pytest.param(
        "POST", "/webhook/redeem", with_(WREDEEM, card_type="cash"), 422, V, id="redeem card"
    ),
    pytest.param("POST", "/webhook/redeem", with_(WREDEEM, extra=1), 422, V, id="redeem field"),
    pytest.param(
        "POST",
        "/webhook/redeem",
        with_(WREDEEM, value=500),
        422,
        "insufficient_balance",
        id="redeem overdraft",
    ),
    # POST /webhook/coupons/redeem
    pytest.param("POST", "/webhook/coupons/redeem", {}, 422, V, id="coupon no token"),
    pytest.param("POST", "/webhook/coupons/redeem", {"token": ""}, 422, V, id="coupon empty"),
    pytest.param("POST", "/webhook/coupons/redeem", {"token": 5}, 422, V, id="coupon number"),
    pytest.param("POST", "/webhook/coupons/redeem", {"token": "x" * 201}, 422, V, id="coupon long"),
    pytest.param(
        "POST",
        "/webhook/coupons/redeem",
        {"token": TOKEN, "pin": "1"},
        422,
        V,
        id="coupon unknown field",
    ),
    # /webhook/customer
    pytest.param(
        "POST",
        "/webhook/customer",
        {"consent_terms": True},
        422,
        "email_required",
        id="enrol no email",
    ),
    pytest.param(
        "POST",
        "/webhook/customer",
        {"email": "a@example.com"},
        422,
        "consent_terms_required",
        id="enrol no consent",
    ),
    pytest.param("POST", "/webhook/customer", with_(ENROL, email="a@b"), 422, V, id="enrol email"),
    pytest.param("POST", "/webhook/customer", with_(ENROL, email=7), 422, V, id="enrol email type"),
    pytest.param("POST", "/webhook/customer", with_(ENROL, phone="abc"), 422, V, id="enrol phone"),
    pytest.param(
        "POST", "/webhook/customer", with_(ENROL, name="x" * 201), 422, V, id="enrol long name"
    ),
    pytest.param(
        "POST", "/webhook/customer", with_(ENROL, birthday="01/05/1990"), 422, V, id="enrol date"
    ),
    pytest.param("POST", "/webhook/customer", [ENROL], 422, V, id="enrol array body"),
    pytest.param("GET", "/webhook/customer", None, 422, V, id="lookup nothing"),
    pytest.param("GET", "/webhook/customer?customer_code=XYZ", None, 422, V, id="lookup bad code"),
    pytest.param(
        "GET", "/webhook/customer?qr=PL1.forged", None, 422, "invalid_qr", id="lookup bad qr"
    ),
    pytest.param(
        "GET",
        "/webhook/customer?customer_code=ABCDEF99",
        None,
        404,
        "customer_not_found",
        id="lookup unknown",
    ),
    # POST /v1/customers
    pytest.param(
        "POST",
        "/v1/customers",
        with_(ENROL, email=_DROP),
        422,
        "email_required",
        id="v1 enrol email",
    ),
    pytest.param(
        "POST", "/v1/customers", with_(ENROL, consent_terms="true"), 422, V, id="v1 consent str"
    ),
    # POST /v1/earn
    pytest.param("POST", "/v1/earn", with_(EARN, amount_cents=0), 422, V, id="earn zero"),
    pytest.param("POST", "/v1/earn", with_(EARN, amount_cents=-1), 422, V, id="earn negative"),
    pytest.param("POST", "/v1/earn", with_(EARN, amount_cents=1.5), 422, V, id="earn float"),
    pytest.param("POST", "/v1/earn", with_(EARN, amount_cents=10**13), 422, V, id="earn huge"),
    pytest.param("POST", "/v1/earn", with_(EARN, stamps=2), 422, V, id="earn both"),
    pytest.param("POST", "/v1/earn", with_(EARN, card_type="stamp"), 422, V, id="earn stamp cents"),
    pytest.param("POST", "/v1/earn", with_(EARN, amount_cents=_DROP), 422, V, id="earn nothing"),
    pytest.param(
        "POST", "/v1/earn", with_(EARN, occurred_at="2026-11-02T09:30:00"), 422, V, id="earn naive"
    ),
    pytest.param(
        "POST",
        "/v1/earn",
        with_(EARN, card_type="stamp", amount_cents=_DROP, stamps=1, stamp_card_id="Bad Id"),
        422,
        V,
        id="earn card id",
    ),
    pytest.param(
        "POST",
        "/v1/earn",
        with_(EARN, customer={"type": "email", "value": "nope"}),
        422,
        V,
        id="earn bad email ref",
    ),
    # POST /v1/redeem
    pytest.param("POST", "/v1/redeem", with_(REDEEM, customer=_DROP), 422, V, id="v1 redeem who"),
    pytest.param("POST", "/v1/redeem", with_(REDEEM, card_type=_DROP), 422, V, id="v1 redeem card"),
    pytest.param("POST", "/v1/redeem", with_(REDEEM, value=0), 422, V, id="v1 redeem zero"),
    pytest.param("POST", "/v1/redeem", with_(REDEEM, value=2.0), 422, V, id="v1 redeem float"),
    pytest.param(
        "POST", "/v1/redeem", with_(REDEEM, external_id=_DROP), 422, V, id="v1 redeem no ext"
    ),
    pytest.param(
        "POST",
        "/v1/redeem",
        with_(REDEEM, customer={"type": "phone", "value": "12"}),
        422,
        V,
        id="v1 redeem phone",
    ),
    # POST /v1/redemptions, coupons
    pytest.param(
        "POST", "/v1/redemptions", with_(REDEMPTION, reward_id="42"), 422, V, id="reward id"
    ),
    pytest.param(
        "POST",
        "/v1/redemptions",
        REDEMPTION,
        404,
        "reward_not_found",
        id="reward unknown",
    ),
    pytest.param("POST", "/v1/coupons/redeem", {"token": None}, 422, V, id="v1 coupon null"),
    pytest.param("GET", "/v1/coupons/" + "x" * 201, None, 422, V, id="v1 coupon long"),
    pytest.param("GET", "/v1/coupons/nope", None, 404, "coupon_not_found", id="v1 coupon unknown"),
]


@pytest.fixture
async def pos(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with pos_client(settings) as client:
        yield client


def _fill(value: Any, code: str, token: str) -> Any:
    if isinstance(value, str):
        return value.replace(CODE, code).replace(TOKEN, token)
    if isinstance(value, dict):
        return {k: _fill(v, code, token) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, code, token) for v in value]
    return value


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), CASES)
async def test_bad_input(
    pos: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    method: str,
    path: str,
    body: Any,
    status: int,
    error: str,
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=100)
    token = await create_coupon(engine, org_id=tenant.org_id, code=code)
    before = await row_counts(engine, tenant.org_id)
    response = await pos.request(
        method, _fill(path, code, token), json=_fill(body, code, token), headers=tenant.headers
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"] == error
    if error == V:
        assert payload["details"], "validation errors name the offending paths"
    assert await row_counts(engine, tenant.org_id) == before


@pytest.mark.parametrize(
    "path",
    [
        "/webhook/pos",
        "/webhook/redeem",
        "/webhook/coupons/redeem",
        "/webhook/customer",
        "/v1/customers",
        "/v1/earn",
        "/v1/redeem",
        "/v1/redemptions",
        "/v1/coupons/redeem",
    ],
)
async def test_wrong_content_type_malformed_json_and_oversized_bodies(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, path: str
) -> None:
    before = await row_counts(engine, tenant.org_id)
    form = await pos.post(
        path,
        content=b"customer_code=ABCDEF12&amount=5",
        headers={**tenant.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (form.status_code, form.json()["error"]) == (415, "unsupported_media_type")
    broken = await pos.post(
        path, content=b'{"amount": ', headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "malformed_json")
    huge = await pos.post(path, json={"token": "x" * 1_100_000}, headers=tenant.headers)
    assert (huge.status_code, huge.json()["error"]) == (413, "payload_too_large")
    no_key = await pos.post(path, json={})
    assert no_key.status_code == 401 and no_key.json() == {"error": "invalid or missing API key"}
    assert await row_counts(engine, tenant.org_id) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/webhook/pos", POS, id="webhook earn"),
        pytest.param("/v1/earn", EARN, id="v1 earn"),
        pytest.param("/webhook/redeem", WREDEEM, id="webhook redeem"),
        pytest.param("/v1/redeem", REDEEM, id="v1 redeem"),
        pytest.param("/webhook/coupons/redeem", {"token": TOKEN}, id="coupon redeem"),
    ],
)
async def test_blocked_customers_can_neither_earn_nor_redeem(
    pos: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, path: str, body: Any
) -> None:
    code = tenant.customer_codes[0]
    await credit(engine, org_id=tenant.org_id, code=code, amount=100)
    token = await create_coupon(engine, org_id=tenant.org_id, code=code)
    await set_customer(engine, org_id=tenant.org_id, code=code, status="BLOCKED")
    before = await row_counts(engine, tenant.org_id)
    response = await pos.post(path, json=_fill(body, code, token), headers=tenant.headers)
    assert (response.status_code, response.json()["error"]) == (403, "customer_blocked")
    assert await row_counts(engine, tenant.org_id) == before


@given(
    cents=st.integers(min_value=1, max_value=10**12),
    as_float=st.booleans(),
)
def test_loyalite_amounts_convert_to_exact_cents(cents: int, as_float: bool) -> None:
    major = Decimal(cents) / 100
    amount: int | float = float(major) if as_float or cents % 100 else int(major)
    body = PosEarnIn(customer_code="ABCDEF12", amount=amount)
    assert body.amount_cents == cents


@given(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3))
def test_loyalite_amounts_with_three_decimals_are_refused(amount: Decimal) -> None:
    if amount == amount.quantize(Decimal("0.01")):
        return
    with pytest.raises(ValidationError):
        PosEarnIn(customer_code="ABCDEF12", amount=float(amount))
