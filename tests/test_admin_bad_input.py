"""Every admin route's bad input: a clear 4xx in the error shape, and nothing written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.devstack.broker import TansuBroker
from tests.conftest import api_client, make_settings
from tests.support.factories import Tenant, credit

pytestmark = pytest.mark.asyncio(loop_scope="session")

CODE = "{code}"  # replaced by a real customer code of the test's org
HOOK = "{hook}"  # replaced by a real webhook endpoint id of the test's org
V = "validation_error"
C = f"/v1/admin/customers/{CODE}"
HOOKS = "/v1/admin/webhooks"
PRODUCT = {"sku": "CAP", "name": "Cappuccino"}
KEY = {"name": "till", "scopes": ["pos"]}
WEBHOOK = {"url": "https://merchant.example/hooks", "events": ["points.*"]}


def case(method: str, path: str, body: Any, status: int, error: str, id: str) -> Any:
    return pytest.param(method, path, body, status, error, id=id)


CASES = [
    # GET /v1/admin/customers
    case("GET", "/v1/admin/customers?page=0", None, 422, V, "list page 0"),
    case("GET", "/v1/admin/customers?limit=101", None, 422, V, "list limit"),
    case("GET", "/v1/admin/customers?limit=x", None, 422, V, "list limit text"),
    case("GET", "/v1/admin/customers?sortBy=balance", None, 422, V, "list sortBy"),
    case("GET", "/v1/admin/customers?sortOrder=up", None, 422, V, "list sortOrder"),
    case("GET", "/v1/admin/customers?statusFilter=GONE", None, 422, V, "list status"),
    case("GET", "/v1/admin/customers?search=", None, 422, V, "list empty search"),
    case("GET", "/v1/admin/customers?search=" + "x" * 101, None, 422, V, "list long search"),
    # GET, PATCH, DELETE /v1/admin/customers/{code}
    case("GET", "/v1/admin/customers/XYZ", None, 422, V, "detail bad code"),
    case("GET", "/v1/admin/customers/ABCDEF12", None, 404, "customer_not_found", "detail unknown"),
    case("GET", f"{C}?history_limit=0", None, 422, V, "detail history 0"),
    case("PATCH", C, {}, 422, V, "patch nothing"),
    case("PATCH", C, [], 422, V, "patch array"),
    case("PATCH", C, {"status": "ERASED"}, 422, V, "patch erased status"),
    case("PATCH", C, {"status": None}, 422, V, "patch null status"),
    case("PATCH", C, {"status": "blocked"}, 422, V, "patch status case"),
    case("PATCH", C, {"email": "a@b.example"}, 422, V, "patch email"),
    case("PATCH", C, {"name": ""}, 422, V, "patch empty name"),
    case("PATCH", C, {"name": 5}, 422, V, "patch name number"),
    case("PATCH", C, {"name": "x" * 201}, 422, V, "patch long name"),
    case("PATCH", C, {"phone": "abc"}, 422, V, "patch bad phone"),
    case("PATCH", C, {"phone": "+1"}, 422, V, "patch short phone"),
    case("DELETE", "/v1/admin/customers/12345", None, 422, V, "erase bad code"),
    # POST /v1/admin/customers/{code}/points
    case("POST", f"{C}/points", {"points": 0, "reason": "x"}, 422, V, "points zero"),
    case("POST", f"{C}/points", {"points": 1.5, "reason": "x"}, 422, V, "points float"),
    case("POST", f"{C}/points", {"points": "5", "reason": "x"}, 422, V, "points string"),
    case("POST", f"{C}/points", {"points": True, "reason": "x"}, 422, V, "points bool"),
    case("POST", f"{C}/points", {"points": 10**10, "reason": "x"}, 422, V, "points huge"),
    case("POST", f"{C}/points", {"points": 5}, 422, V, "points no reason"),
    case("POST", f"{C}/points", {"points": 5, "reason": ""}, 422, V, "points empty reason"),
    case("POST", f"{C}/points", {"points": 5, "reason": "x" * 501}, 422, V, "points long reason"),
    case(
        "POST",
        f"{C}/points",
        {"points": 5, "reason": "x", "external_id": "a b"},
        422,
        V,
        "points external id",
    ),
    case("POST", f"{C}/points", {"points": 5, "reason": "x", "pin": "1"}, 422, V, "points field"),
    case(
        "POST",
        f"{C}/points",
        {"points": -101, "reason": "x"},
        422,
        "insufficient_balance",
        "points overdraft",
    ),
    # PUT, GET /v1/admin/products
    case("PUT", "/v1/admin/products", {}, 422, V, "products nothing"),
    case("PUT", "/v1/admin/products", [PRODUCT], 422, V, "products bare list"),
    case("PUT", "/v1/admin/products", {"products": []}, 422, V, "products empty"),
    case("PUT", "/v1/admin/products", {"products": [PRODUCT] * 2}, 422, V, "products dup sku"),
    case(
        "PUT",
        "/v1/admin/products",
        {"products": [{"sku": f"S{i}", "name": "n"} for i in range(1001)]},
        422,
        V,
        "products too many",
    ),
    case("PUT", "/v1/admin/products", {"products": [{"sku": "A"}]}, 422, V, "products no name"),
    case(
        "PUT",
        "/v1/admin/products",
        {"products": [{**PRODUCT, "price_cents": -1}]},
        422,
        V,
        "products negative price",
    ),
    case(
        "PUT",
        "/v1/admin/products",
        {"products": [{**PRODUCT, "price_cents": 3.5}]},
        422,
        V,
        "products float price",
    ),
    case(
        "PUT",
        "/v1/admin/products",
        {"products": [{**PRODUCT, "sku": "x" * 65}]},
        422,
        V,
        "products long sku",
    ),
    case(
        "PUT",
        "/v1/admin/products",
        {"products": [{**PRODUCT, "active": "yes"}]},
        422,
        V,
        "products active text",
    ),
    case(
        "PUT",
        "/v1/admin/products",
        {"products": [{**PRODUCT, "colour": "red"}]},
        422,
        V,
        "products unknown field",
    ),
    case("GET", "/v1/admin/products?limit=0", None, 422, V, "products limit"),
    case("GET", "/v1/admin/products?active=maybe", None, 422, V, "products active"),
    # POST, DELETE /v1/admin/keys
    case("POST", "/v1/admin/keys", {}, 422, V, "keys nothing"),
    case("POST", "/v1/admin/keys", {**KEY, "scopes": []}, 422, V, "keys no scope"),
    case("POST", "/v1/admin/keys", {**KEY, "scopes": ["root"]}, 422, V, "keys bad scope"),
    case("POST", "/v1/admin/keys", {**KEY, "scopes": ["pos", "pos"]}, 422, V, "keys dup scope"),
    case("POST", "/v1/admin/keys", {**KEY, "name": ""}, 422, V, "keys empty name"),
    case(
        "POST",
        "/v1/admin/keys",
        {**KEY, "rate_limits": {"earn": "lots"}},
        422,
        V,
        "keys bad limit",
    ),
    case(
        "POST",
        "/v1/admin/keys",
        {**KEY, "rate_limits": {"admin": "1/minute"}},
        422,
        V,
        "keys unknown limit group",
    ),
    case("POST", "/v1/admin/keys", {**KEY, "key": "sk_live_x"}, 422, V, "keys chosen key"),
    case("DELETE", "/v1/admin/keys/not-a-uuid", None, 422, V, "keys revoke bad id"),
    # PATCH /v1/admin/org
    case("PATCH", "/v1/admin/org", {}, 422, V, "org nothing"),
    case("PATCH", "/v1/admin/org", {"timezone": "Mars/Olympus"}, 422, V, "org timezone"),
    case("PATCH", "/v1/admin/org", {"timezone": "../etc/passwd"}, 422, V, "org timezone path"),
    case("PATCH", "/v1/admin/org", {"currency": "eur"}, 422, V, "org currency case"),
    case("PATCH", "/v1/admin/org", {"currency": "EURO"}, 422, V, "org currency long"),
    case("PATCH", "/v1/admin/org", {"verification_preset": "paranoid"}, 422, V, "org preset"),
    case("PATCH", "/v1/admin/org", {"negative_balance_policy": "yes"}, 422, V, "org policy"),
    case("PATCH", "/v1/admin/org", {"subscription_status": "free"}, 422, V, "org subscription"),
    case("PATCH", "/v1/admin/org", {"name": None}, 422, V, "org null name"),
    case("PATCH", "/v1/admin/org", {"name": ""}, 422, V, "org empty name"),
    case("PATCH", "/v1/admin/org", {"id": str(uuid.uuid4())}, 422, V, "org id"),
    # POST /v1/admin/webhooks and its reads
    case("POST", HOOKS, {**WEBHOOK, "url": "ftp://merchant.example/x"}, 422, V, "hook ftp"),
    case("POST", HOOKS, {**WEBHOOK, "url": "not a url at all"}, 422, V, "hook not url"),
    case("POST", HOOKS, {**WEBHOOK, "url": "https://u:p@m.example/"}, 422, V, "hook userinfo"),
    case("POST", HOOKS, {**WEBHOOK, "events": []}, 422, V, "hook no events"),
    case("POST", HOOKS, {**WEBHOOK, "events": ["points.stolen"]}, 422, V, "hook unknown event"),
    case("POST", HOOKS, {**WEBHOOK, "events": "points.*"}, 422, V, "hook events string"),
    case("POST", HOOKS, {**WEBHOOK, "secret": "short"}, 422, V, "hook short secret"),
    case("POST", HOOKS, {"events": ["*"]}, 422, V, "hook no url"),
    case("POST", HOOKS, {**WEBHOOK, "active": False}, 422, V, "hook unknown field"),
    case("GET", f"{HOOKS}/42", None, 422, V, "hook bad id"),
    case(
        "GET",
        f"{HOOKS}/00000000-0000-4000-8000-000000000000",
        None,
        404,
        "webhook_not_found",
        "hook unknown",
    ),
    case("GET", f"{HOOKS}/{HOOK}/deliveries?status=lost", None, 422, V, "deliveries status"),
    case("GET", f"{HOOKS}/{HOOK}/deliveries?limit=0", None, 422, V, "deliveries limit"),
    case("DELETE", f"{HOOKS}/42", None, 422, V, "hook delete bad id"),
]


async def snapshot(engine: AsyncEngine, org_id: uuid.UUID) -> dict[str, Any]:
    """Everything an admin request can change in one org."""
    counted = [
        "customers",
        "ledger_entries",
        "wallets",
        "outbox",
        "products",
        "api_keys",
        "webhook_endpoints",
    ]
    async with engine.connect() as conn:
        state: dict[str, Any] = {
            t: (
                await conn.execute(
                    text(f"SELECT count(*) FROM {t} WHERE org_id = :org"), {"org": org_id}
                )
            ).scalar_one()
            for t in counted
        }
        state["org"] = tuple(
            (await conn.execute(text("SELECT * FROM orgs WHERE id = :org"), {"org": org_id})).one()
        )
        state["customers_rows"] = [
            tuple(r)
            for r in await conn.execute(
                text(
                    "SELECT code, name, email, phone, status, erased_at FROM customers"
                    " WHERE org_id = :org ORDER BY id"
                ),
                {"org": org_id},
            )
        ]
        state["wallet_total"] = (
            await conn.execute(
                text("SELECT COALESCE(sum(balance), 0) FROM wallets WHERE org_id = :org"),
                {"org": org_id},
            )
        ).scalar_one()
        state["keys_revoked"] = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM api_keys WHERE org_id = :org AND revoked_at IS NOT NULL"
                ),
                {"org": org_id},
            )
        ).scalar_one()
    return state


@pytest.fixture(scope="module")
async def admin(database_url: str, broker: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the whole table: these requests never reach the broker."""
    async with api_client(make_settings(database_url, broker.bootstrap)) as client:
        yield client


def _fill(value: Any, code: str, hook: str) -> Any:
    if isinstance(value, str):
        return value.replace(CODE, code).replace(HOOK, hook)
    if isinstance(value, dict):
        return {k: _fill(v, code, hook) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, code, hook) for v in value]
    return value


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), CASES)
async def test_bad_input(
    admin: httpx.AsyncClient,
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
    hook = await admin.post(
        HOOKS, json={"url": "http://127.0.0.1:9/x", "events": ["*"]}, headers=tenant.headers
    )
    before = await snapshot(engine, tenant.org_id)
    response = await admin.request(
        method,
        _fill(path, code, hook.json()["id"]),
        json=_fill(body, code, hook.json()["id"]),
        headers=tenant.headers,
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"] == error
    if error == V:
        assert payload["details"], "validation errors name the offending paths"
    assert await snapshot(engine, tenant.org_id) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", C),
        ("POST", f"{C}/points"),
        ("PUT", "/v1/admin/products"),
        ("POST", "/v1/admin/keys"),
        ("PATCH", "/v1/admin/org"),
        ("POST", HOOKS),
    ],
)
async def test_malformed_json_and_wrong_content_type(
    admin: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, method: str, path: str
) -> None:
    path = path.replace(CODE, tenant.customer_codes[0])
    before = await snapshot(engine, tenant.org_id)
    broken = await admin.request(
        method,
        path,
        content=b'{"points": ',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "malformed_json")
    form = await admin.request(
        method,
        path,
        content=b"points=5",
        headers={**tenant.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (form.status_code, form.json()["error"]) == (415, "unsupported_media_type")
    assert await snapshot(engine, tenant.org_id) == before
