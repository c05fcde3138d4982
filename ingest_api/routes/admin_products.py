"""The product catalogue (seed 004 asks POS integrations for a product API)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query

from ingest_api.auth import AdminKey
from ingest_api.deps import EngineDep
from punchline.db.repositories import products
from punchline.db.repositories.products import ProductUpsert
from schemas.admin import ProductOut, ProductPage, ProductsPutIn, ProductsPutOut
from schemas.customers import Pagination

router = APIRouter(prefix="/v1/admin/products", tags=["admin: products"])


@router.put("", response_model=ProductsPutOut)
async def put_products(
    body: ProductsPutIn, principal: AdminKey, engine: EngineDep
) -> ProductsPutOut:
    """Bulk upsert by sku: a listed product is created or replaced; others are untouched."""
    async with engine.begin() as conn:
        created, updated = await products.upsert(
            conn,
            org_id=principal.org_id,
            products=[
                ProductUpsert(p.sku, p.name, p.category, p.price_cents, p.active)
                for p in body.products
            ],
        )
    return ProductsPutOut(created=created, updated=updated)


@router.get("", response_model=ProductPage)
async def list_products(
    principal: AdminKey,
    engine: EngineDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    search: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    category: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    active: bool | None = None,
) -> ProductPage:
    async with engine.connect() as conn:
        rows, total = await products.page(
            conn,
            org_id=principal.org_id,
            search=search,
            category=category,
            active=active,
            limit=limit,
            offset=(page - 1) * limit,
        )
    return ProductPage(
        products=[ProductOut(**dataclasses.asdict(row)) for row in rows],
        pagination=Pagination(page=page, limit=limit, total=total),
    )
