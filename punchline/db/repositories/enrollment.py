"""Enrolment: insert a customer, or find the one that already has the email."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.repositories.customer_queries import CustomerRecord, find
from punchline.db.repositories.customers import new_customer_code
from punchline.db.sql import sql

_RETURNING = (
    " RETURNING id, org_id, code, email, phone, name, birthday, status, tier,"
    " lifetime_points, created_at"
)


async def enroll(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    email: str,
    phone: str | None,
    name: str | None,
    birthday: date | None,
    consent_privacy: bool,
    now: datetime,
) -> tuple[CustomerRecord, bool]:
    """(customer, is_new). Emails are unique per org, case-insensitively; a concurrent
    enrolment of the same email resolves to the one that committed first."""
    for _ in range(10):
        row = (
            await conn.execute(
                sql(
                    "INSERT INTO customers (org_id, code, email, phone, name, birthday,"
                    " consent_terms_at, consent_privacy_at)"
                    " VALUES (:org, :code, :email, :phone, :name, :birthday, :now,"
                    " CASE WHEN :privacy THEN CAST(:now AS timestamptz) END)"
                    " ON CONFLICT DO NOTHING" + _RETURNING
                ),
                {
                    "org": org_id,
                    "code": new_customer_code(),
                    "email": email,
                    "phone": phone,
                    "name": name,
                    "birthday": birthday,
                    "now": now,
                    "privacy": consent_privacy,
                },
            )
        ).first()
        if row is not None:
            return CustomerRecord(*row), True
        existing = await find(conn, org_id=org_id, email=email)
        if existing is not None:
            return existing, False
        # Otherwise the random code clashed with another customer's: draw again.
    raise RuntimeError("could not allocate a unique customer code")
