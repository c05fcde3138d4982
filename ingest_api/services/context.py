"""Who and what a request acts on: the org, the customer, and the gates on them."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from ingest_api.errors import ApiError
from punchline.db.repositories import customer_queries, orgs
from punchline.db.repositories.customer_queries import CustomerRecord
from punchline.db.repositories.orgs import OrgRow
from schemas.common import CustomerRef, CustomerRefType

_PAYING = frozenset({"active", "past_due"})


async def load_org(conn: AsyncConnection, org_id: uuid.UUID) -> OrgRow:
    found = await orgs.load_orgs(conn, [org_id])
    if org_id not in found:  # the key outlived its org
        raise ApiError(401, "invalid or missing API key")
    return found[org_id]


def require_subscription(org: OrgRow) -> None:
    """Redeem and coupon redeem need an active (or past-due) subscription; earn never."""
    if org.subscription_status not in _PAYING:
        raise ApiError(402, "subscription_required", "The org's subscription is not active.")


def not_found() -> ApiError:
    return ApiError(404, "customer_not_found", "No customer with that code in this org.")


async def customer_by_code(conn: AsyncConnection, org_id: uuid.UUID, code: str) -> CustomerRecord:
    customer = await customer_queries.find(conn, org_id=org_id, code=code)
    if customer is None:
        raise not_found()
    return customer


async def customer_by_ref(
    conn: AsyncConnection, org_id: uuid.UUID, ref: CustomerRef
) -> CustomerRecord:
    """A normalised :class:`CustomerRef` (code upper-cased, email lower-cased, phone +digits)."""
    if ref.type is CustomerRefType.code:
        customer = await customer_queries.find(conn, org_id=org_id, code=ref.value)
    elif ref.type is CustomerRefType.email:
        customer = await customer_queries.find(conn, org_id=org_id, email=ref.value)
    else:
        customer = await customer_queries.find(conn, org_id=org_id, phone=ref.value)
    if customer is None:
        raise not_found()
    return customer


def require_active(customer: CustomerRecord) -> None:
    """Blocked customers can neither earn nor redeem."""
    if customer.status != "ACTIVE":
        raise ApiError(403, "customer_blocked", "This customer is blocked.")
