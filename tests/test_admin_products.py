"""The product catalogue: bulk upsert by sku, and a paged, filtered list."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.db.repositories import products
from tests.support.factories import Tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")

MENU = [
    {"sku": "CAP", "name": "Cappuccino", "category": "drinks", "price_cents": 350},
    {"sku": "LAT", "name": "Latte", "category": "drinks", "price_cents": 380},
    {"sku": "CAKE", "name": "Carrot Cake", "category": "food", "price_cents": 450},
]


async def test_upsert_creates_then_updates(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    first = await client.put("/v1/admin/products", json={"products": MENU}, headers=tenant.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 3, "updated": 0}
    changed = [
        {"sku": "CAP", "name": "Cappuccino (large)", "category": "drinks", "price_cents": 400},
        {"sku": "MUF", "name": "Muffin", "category": "food"},
    ]
    second = await client.put(
        "/v1/admin/products", json={"products": changed}, headers=tenant.headers
    )
    assert second.json() == {"created": 1, "updated": 1}

    listed = await client.get("/v1/admin/products", headers=tenant.headers)
    body = listed.json()
    assert body["pagination"]["total"] == 4
    by_sku = {p["sku"]: p for p in body["products"]}
    assert list(by_sku) == ["CAKE", "CAP", "LAT", "MUF"]
    assert (by_sku["CAP"]["name"], by_sku["CAP"]["price_cents"]) == ("Cappuccino (large)", 400)
    assert by_sku["MUF"]["price_cents"] is None and by_sku["MUF"]["active"] is True

    async with engine.connect() as conn:  # what the worker's enrichment reads
        found = await products.lookup(conn, org_id=tenant.org_id, skus=["CAP", "NOPE"])
    assert {sku: p.category for sku, p in found.items()} == {"CAP": "drinks"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"category": "food"}, ["CAKE"], id="category"),
        pytest.param({"search": "latt"}, ["LAT"], id="search name"),
        pytest.param({"search": "cap"}, ["CAP"], id="search sku"),
        pytest.param({"active": "false"}, ["LAT"], id="inactive"),
        pytest.param({"limit": 1, "page": 2}, ["CAP"], id="page"),
    ],
)
async def test_list_filters(
    client: httpx.AsyncClient, tenant: Tenant, params: dict[str, object], expected: list[str]
) -> None:
    menu = [dict(p) for p in MENU]
    menu[1]["active"] = False
    await client.put("/v1/admin/products", json={"products": menu}, headers=tenant.headers)
    response = await client.get("/v1/admin/products", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert [p["sku"] for p in response.json()["products"]] == expected
