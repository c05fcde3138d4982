from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from punchline.db.sql import sql


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: int
    org_id: uuid.UUID
    code: str
    status: str
    tier: str | None
    lifetime_points: int


def new_customer_code() -> str:
    return secrets.token_hex(4).upper()


async def insert_customer(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    code: str | None = None,
) -> CustomerRow:
    """Insert a customer with a fresh unique code (retried on the rare code clash)."""
    for _ in range(10):
        candidate = code or new_customer_code()
        row = (
            await conn.execute(
                sql(
                    "INSERT INTO customers (org_id, code, email, phone, name, consent_terms_at)"
                    " VALUES (:org, :code, :email, :phone, :name, now())"
                    " ON CONFLICT (org_id, code) DO NOTHING"
                    " RETURNING id, org_id, code, status, tier, lifetime_points"
                ),
                {"org": org_id, "code": candidate, "email": email, "phone": phone, "name": name},
            )
        ).first()
        if row is not None:
            return CustomerRow(*row)
        if code is not None:
            raise ValueError(f"customer code {code} already exists")
    raise RuntimeError("could not allocate a unique customer code")


async def resolve_refs(
    conn: AsyncConnection, refs: Iterable[tuple[uuid.UUID, str, str]]
) -> dict[tuple[uuid.UUID, str, str], CustomerRow]:
    """Resolve (org_id, ref type, normalised value) triples in one round trip."""
    refs = list(set(refs))
    if not refs:
        return {}
    # One equality join per reference kind, each on its own index: an OR across kinds
    # would join on org_id alone and filter every customer of the org per reference.
    result = await conn.execute(
        sql(
            "WITH r AS (SELECT * FROM unnest(CAST(:orgs AS uuid[]), CAST(:kinds AS text[]),"
            "   CAST(:vals AS text[])) AS r(org_id, kind, value))"
            " SELECT r.org_id, r.kind, r.value, c.id, c.code, c.status, c.tier, c.lifetime_points"
            " FROM r JOIN customers c ON c.org_id = r.org_id AND c.code = r.value"
            " WHERE r.kind = 'code' AND c.erased_at IS NULL"
            " UNION ALL"
            " SELECT r.org_id, r.kind, r.value, c.id, c.code, c.status, c.tier, c.lifetime_points"
            " FROM r JOIN customers c ON c.org_id = r.org_id AND lower(c.email) = r.value"
            " WHERE r.kind = 'email' AND c.erased_at IS NULL"
            " UNION ALL"
            " SELECT r.org_id, r.kind, r.value, c.id, c.code, c.status, c.tier, c.lifetime_points"
            " FROM r JOIN customers c ON c.org_id = r.org_id AND c.phone = r.value"
            " WHERE r.kind = 'phone' AND c.erased_at IS NULL"
        ),
        {
            "orgs": [r[0] for r in refs],
            "kinds": [r[1] for r in refs],
            "vals": [r[2] for r in refs],
        },
    )
    found: dict[tuple[uuid.UUID, str, str], CustomerRow] = {}
    for row in result:
        found[(row.org_id, row.kind, row.value)] = CustomerRow(
            id=row.id,
            org_id=row.org_id,
            code=row.code,
            status=row.status,
            tier=row.tier,
            lifetime_points=row.lifetime_points,
        )
    return found
