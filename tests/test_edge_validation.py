"""Bad input at the edge: a clear 4xx in the error shape, and nothing produced."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.support.factories import Tenant, order_body

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(body: dict[str, Any], value: Any, *path: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


BASE = order_body(customer_code="ABCDEF12", external_id="bad-1")

CASES = [
    pytest.param(_without(BASE, "external_id"), 422, "validation_error", id="missing external_id"),
    pytest.param(_without(BASE, "customer"), 422, "validation_error", id="missing customer"),
    pytest.param(_without(BASE, "occurred_at"), 422, "validation_error", id="missing occurred_at"),
    pytest.param(
        _with(BASE, -1, "lines", 0, "quantity"), 422, "validation_error", id="negative quantity"
    ),
    pytest.param(
        _with(BASE, 0, "lines", 0, "quantity"), 422, "validation_error", id="zero quantity"
    ),
    pytest.param(
        _with(BASE, 3.5, "lines", 0, "unit_price_cents"), 422, "validation_error", id="float cents"
    ),
    pytest.param(
        _with(BASE, 350.0, "lines", 0, "unit_price_cents"),
        422,
        "validation_error",
        id="integral float cents",
    ),
    pytest.param(
        _with(BASE, "350", "lines", 0, "unit_price_cents"),
        422,
        "validation_error",
        id="string cents",
    ),
    pytest.param(
        _with(BASE, 10**13, "lines", 0, "unit_price_cents"),
        422,
        "validation_error",
        id="huge cents",
    ),
    pytest.param(_with(BASE, [], "lines"), 422, "validation_error", id="no lines"),
    pytest.param(
        _with(BASE, "2026-11-02T09:30:00", "occurred_at"),
        422,
        "validation_error",
        id="naive timestamp",
    ),
    pytest.param(_with(BASE, "eur", "currency"), 422, "validation_error", id="lowercase currency"),
    pytest.param(
        _with(BASE, {"type": "code", "value": "XYZ"}, "customer"),
        422,
        "validation_error",
        id="bad code",
    ),
    pytest.param(
        _with(BASE, {"type": "email", "value": "nope"}, "customer"),
        422,
        "validation_error",
        id="bad email",
    ),
    pytest.param(
        _with(BASE, {"type": "card", "value": "1"}, "customer"),
        422,
        "validation_error",
        id="unknown ref type",
    ),
    pytest.param(_with(BASE, 1, "surprise"), 422, "validation_error", id="unknown field"),
    pytest.param(
        _with(BASE, "a b", "external_id"), 422, "validation_error", id="external_id with space"
    ),
    pytest.param(
        _with(BASE, 10_000, "lines", 0, "discount_cents"),
        422,
        "validation_error",
        id="discount above line",
    ),
]


@pytest.mark.parametrize(("body", "status", "code"), CASES)
async def test_bad_order_bodies(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], status: int, code: str
) -> None:
    response = await client.post("/v1/orders", json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"] == code
    assert payload["details"], "validation errors name the offending paths"


async def test_malformed_json(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/orders",
        content=b'{"external_id": ',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


async def test_wrong_content_type(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/orders",
        content=b"external_id=1",
        headers={**tenant.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


async def test_one_megabyte_body_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = order_body(customer_code="ABCDEF12")
    body["lines"][0]["name"] = "x" * 1_100_000
    response = await client.post("/v1/orders", json=body, headers=tenant.headers)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no key"),
        pytest.param({"X-Api-Key": "sk_live_" + "x" * 32}, id="unknown key"),
        pytest.param({"X-Api-Key": "not-a-key"}, id="malformed key"),
        pytest.param({"Authorization": "Bearer sk_live_" + "y" * 32}, id="unknown bearer"),
        pytest.param({"Authorization": "Basic abc"}, id="wrong scheme"),
    ],
)
async def test_bad_api_key_gets_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post("/v1/orders", json=BASE, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid or missing API key"}


async def test_bearer_key_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(
        "/v1/transactions/never-sent", headers={"Authorization": f"Bearer {tenant.key}"}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "transaction_not_found"
