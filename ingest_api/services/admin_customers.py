"""Merchant administration of customers: list, detail, edit, erase.

Every query is scoped to the key's org: another org's customer is simply not found.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ingest_api.errors import ApiError
from ingest_api.services import context, phones
from punchline.db.repositories import admin_customers, domain_events
from punchline.db.repositories.admin_customers import AdminCustomerRow
from schemas.admin import (
    AdminCustomerDetail,
    AdminCustomerOut,
    AdminCustomerPage,
    CustomerPatchIn,
    ErasedOut,
    LedgerEntryOut,
    SortBy,
    SortOrder,
    StatusFilter,
)
from schemas.common import CustomerRef, CustomerRefType
from schemas.customers import Pagination
from schemas.events import partition_key
from schemas.outbound_events import EventType


def customer_out(row: AdminCustomerRow, stamps: dict[str, int]) -> AdminCustomerOut:
    return AdminCustomerOut(
        customer_code=row.code,
        name=row.name,
        email=row.email,
        phone=row.phone,
        birthday=row.birthday,
        status=row.status,
        tier=row.tier,
        lifetime_points=row.lifetime_points,
        point_balance=row.point_balance,
        stamps=stamps,
        created_at=row.created_at,
        erased_at=row.erased_at,
    )


def customer_erased() -> ApiError:
    return ApiError(409, "customer_erased", "This customer was erased; it can no longer change.")


async def find(
    conn: AsyncConnection, org_id: uuid.UUID, code: str, *, lock: bool = False
) -> AdminCustomerRow:
    row = await admin_customers.get_by_code(conn, org_id=org_id, code=code, lock=lock)
    if row is None:
        raise context.not_found()
    return row


async def list_page(
    engine: AsyncEngine,
    org_id: uuid.UUID,
    *,
    search: str | None,
    status: StatusFilter | None,
    sort_by: SortBy,
    sort_order: SortOrder,
    page: int,
    limit: int,
) -> AdminCustomerPage:
    digits = re.sub(r"\D", "", search or "")
    async with engine.connect() as conn:
        rows, total = await admin_customers.list_customers(
            conn,
            org_id=org_id,
            search=search or None,
            phone_digits=digits if len(digits) >= 3 else None,
            status=status.value if status else None,
            sort_by=sort_by.value,
            descending=sort_order is SortOrder.desc,
            limit=limit,
            offset=(page - 1) * limit,
        )
        stamps = await admin_customers.stamps_of(conn, [r.id for r in rows])
    return AdminCustomerPage(
        customers=[customer_out(r, stamps.get(r.id, {})) for r in rows],
        pagination=Pagination(page=page, limit=limit, total=total),
    )


async def detail(
    engine: AsyncEngine, org_id: uuid.UUID, code: str, *, history_limit: int
) -> AdminCustomerDetail:
    async with engine.connect() as conn:
        row = await find(conn, org_id, code)
        stamps = await admin_customers.stamps_of(conn, [row.id])
        entries = await admin_customers.history(conn, customer_id=row.id, limit=history_limit)
    return AdminCustomerDetail(
        customer=customer_out(row, stamps.get(row.id, {})),
        history=[LedgerEntryOut(**dataclasses.asdict(e)) for e in entries],
        total_points=row.point_balance,
    )


async def patch(
    engine: AsyncEngine, org_id: uuid.UUID, code: str, body: CustomerPatchIn, *, region: str
) -> AdminCustomerOut:
    changes: dict[str, str | None] = {}
    for name in body.model_fields_set:
        changes[name] = getattr(body, name)
    if changes.get("phone") is not None:
        changes["phone"] = phones.to_e164(str(changes["phone"]), region=region)
    async with engine.begin() as conn:
        row = await find(conn, org_id, code, lock=True)
        if row.erased_at is not None:
            raise customer_erased()
        await admin_customers.update_profile(conn, customer_id=row.id, changes=changes)
        row = await find(conn, org_id, code)
        stamps = await admin_customers.stamps_of(conn, [row.id])
    return customer_out(row, stamps.get(row.id, {}))


async def erase(engine: AsyncEngine, org_id: uuid.UUID, code: str, *, now: datetime) -> ErasedOut:
    """Idempotent: erasing an erased customer answers with the first erasure."""
    async with engine.begin() as conn:
        row = await find(conn, org_id, code, lock=True)
        if row.erased_at is not None:
            return ErasedOut(customer_code=row.code, status=row.status, erased_at=row.erased_at)
        ref = CustomerRef(type=CustomerRefType.code, value=row.code)
        erased_at = await admin_customers.erase(
            conn,
            org_id=org_id,
            customer_id=row.id,
            code_ref=ref.model_dump(mode="json"),
            stream_key=partition_key(org_id, ref).decode(),
            now=now,
        )
        await domain_events.add(
            conn,
            org_id=org_id,
            customer_id=row.id,
            event_type=EventType.customer_erased.value,
            payload={"customer_code": row.code, "erased_at": erased_at.isoformat()},
        )
    return ErasedOut(customer_code=row.code, status="ERASED", erased_at=erased_at)
