"""The merchant's product catalogue, keyed (org_id, sku)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql

_COLUMNS = "sku, name, category, price_cents, active, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class ProductRow:
    sku: str
    name: str
    category: str | None
    price_cents: int | None
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ProductUpsert:
    sku: str
    name: str
    category: str | None
    price_cents: int | None
    active: bool


async def upsert(
    conn: AsyncConnection, *, org_id: uuid.UUID, products: Sequence[ProductUpsert]
) -> tuple[int, int]:
    """Insert or replace every product in one statement; return (created, updated)."""
    result = await conn.execute(
        sql(
            "INSERT INTO products (org_id, sku, name, category, price_cents, active)"
            " SELECT :org, * FROM unnest(CAST(:skus AS text[]), CAST(:names AS text[]),"
            "   CAST(:cats AS text[]), CAST(:prices AS bigint[]), CAST(:actives AS boolean[]))"
            " ON CONFLICT (org_id, sku) DO UPDATE SET name = EXCLUDED.name,"
            "   category = EXCLUDED.category, price_cents = EXCLUDED.price_cents,"
            "   active = EXCLUDED.active, updated_at = now()"
            " RETURNING (xmax = 0) AS created"
        ),
        {
            "org": org_id,
            "skus": [p.sku for p in products],
            "names": [p.name for p in products],
            "cats": [p.category for p in products],
            "prices": [p.price_cents for p in products],
            "actives": [p.active for p in products],
        },
    )
    flags = [bool(row.created) for row in result]
    return sum(flags), len(flags) - sum(flags)


async def page(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    search: str | None,
    category: str | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[ProductRow], int]:
    where = " FROM products WHERE org_id = :org"
    params: dict[str, Any] = {"org": org_id, "limit": limit, "offset": offset}
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where += " AND (lower(name) LIKE :q OR lower(sku) LIKE :q)"
        params["q"] = f"%{escaped}%"
    if category is not None:
        where += " AND category = :cat"
        params["cat"] = category
    if active is not None:
        where += " AND active = :active"
        params["active"] = active
    total = (await conn.execute(sql("SELECT count(*)" + where), params)).scalar_one()
    result = await conn.execute(
        sql(f"SELECT {_COLUMNS}{where} ORDER BY sku LIMIT :limit OFFSET :offset"), params
    )
    return [ProductRow(*row) for row in result], int(total)


async def lookup(
    conn: AsyncConnection, *, org_id: uuid.UUID, skus: Iterable[str]
) -> dict[str, ProductRow]:
    """Active products by exact sku, for enriching order lines that carry only a sku."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    result = await conn.execute(
        sql(f"SELECT {_COLUMNS} FROM products WHERE org_id = :org AND sku = ANY(:skus) AND active"),
        {"org": org_id, "skus": wanted},
    )
    return {row.sku: ProductRow(*row) for row in result}
