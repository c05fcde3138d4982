"""Merchant administration of customers (seed 002, "Customer Management")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ingest_api.auth import AdminKey
from ingest_api.deps import EngineDep, SettingsDep
from ingest_api.routes.common import EnvDep
from ingest_api.services import admin_customers, admin_points
from schemas.admin import (
    AdminCustomerDetail,
    AdminCustomerOut,
    AdminCustomerPage,
    CustomerPatchIn,
    ErasedOut,
    PointsAdjustIn,
    PointsAdjustOut,
    SortBy,
    SortOrder,
    StatusFilter,
)

router = APIRouter(prefix="/v1/admin/customers", tags=["admin: customers"])

CodePath = Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{8}$")]


def actor(principal: AdminKey) -> str:
    return f"key:{principal.key_id}"


@router.get("", response_model=AdminCustomerPage)
async def list_customers(
    principal: AdminKey,
    engine: EngineDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    search: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    status: Annotated[StatusFilter | None, Query(alias="statusFilter")] = None,
    sort_by: Annotated[SortBy, Query(alias="sortBy")] = SortBy.created_at,
    sort_order: Annotated[SortOrder, Query(alias="sortOrder")] = SortOrder.desc,
) -> AdminCustomerPage:
    return await admin_customers.list_page(
        engine,
        principal.org_id,
        search=search.strip() if search else None,
        status=status,
        sort_by=sort_by,
        sort_order=sort_order,
        page=page,
        limit=limit,
    )


@router.get("/{code}", response_model=AdminCustomerDetail)
async def get_customer(
    code: CodePath,
    principal: AdminKey,
    engine: EngineDep,
    history_limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AdminCustomerDetail:
    return await admin_customers.detail(engine, principal.org_id, code, history_limit=history_limit)


@router.patch("/{code}", response_model=AdminCustomerOut)
async def patch_customer(
    code: CodePath,
    body: CustomerPatchIn,
    principal: AdminKey,
    engine: EngineDep,
    settings: SettingsDep,
) -> AdminCustomerOut:
    return await admin_customers.patch(
        engine, principal.org_id, code, body, region=settings.default_phone_region
    )


@router.post("/{code}/points", response_model=PointsAdjustOut)
async def adjust_points(
    code: CodePath, body: PointsAdjustIn, principal: AdminKey, env: EnvDep
) -> PointsAdjustOut:
    return await admin_points.adjust(env, principal.org_id, code, body, actor=actor(principal))


@router.delete("/{code}", response_model=ErasedOut)
async def erase_customer(
    code: CodePath, principal: AdminKey, engine: EngineDep, request: Request
) -> ErasedOut:
    """Erase the customer's personal data; the anonymised ledger stays."""
    return await admin_customers.erase(
        engine, principal.org_id, code, now=request.app.state.clock()
    )
