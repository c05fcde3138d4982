"""Customer look-ups and their views (balances, masked email)."""

from __future__ import annotations

import re
import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from ingest_api.services import context, org_rules, qr
from ingest_api.services.env import Env
from punchline.db.repositories import customer_queries
from punchline.db.repositories.customer_queries import CustomerRecord
from punchline.db.repositories.wallets import POINTS, stamp_asset
from schemas.customers import CustomerOut, CustomerPage, Pagination


def mask_email(email: str | None) -> str | None:
    """``sophie@example.com`` → ``s***@example.com``."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


async def view(conn: AsyncConnection, customer: CustomerRecord, card_id: str) -> CustomerOut:
    wallets = await customer_queries.balances(conn, customer.id)
    stamps = {a.removeprefix("stamps:"): n for a, n in wallets.items() if a.startswith("stamps:")}
    return CustomerOut(
        customer_code=customer.code,
        name=customer.name,
        masked_email=mask_email(customer.email),
        phone=customer.phone,
        birthday=customer.birthday,
        status=customer.status,
        tier=customer.tier,
        lifetime_points=customer.lifetime_points,
        point_balance=wallets.get(POINTS, 0),
        stamp_count=wallets.get(stamp_asset(card_id), 0),
        stamps=stamps,
        created_at=customer.created_at,
    )


async def default_card(conn: AsyncConnection, org_id: uuid.UUID) -> str:
    return org_rules.default_card_id(await org_rules.active_rule_set(conn, org_id))


async def by_code(env: Env, org_id: uuid.UUID, code: str) -> CustomerOut:
    async with env.engine.connect() as conn:
        customer = await context.customer_by_code(conn, org_id, code)
        return await view(conn, customer, await default_card(conn, org_id))


async def by_email(env: Env, org_id: uuid.UUID, email: str) -> CustomerOut:
    async with env.engine.connect() as conn:
        customer = await customer_queries.find(conn, org_id=org_id, email=email)
        if customer is None:
            raise context.not_found()
        return await view(conn, customer, await default_card(conn, org_id))


async def by_phone(env: Env, org_id: uuid.UUID, phone: str) -> CustomerOut:
    async with env.engine.connect() as conn:
        customer = await customer_queries.find(conn, org_id=org_id, phone=phone)
        if customer is None:
            raise context.not_found()
        return await view(conn, customer, await default_card(conn, org_id))


async def by_qr(env: Env, org_id: uuid.UUID, payload: str) -> CustomerOut:
    code = qr.verify(env.secret, payload, org_id=org_id, now=env.now)
    return await by_code(env, org_id, code)


async def search(env: Env, org_id: uuid.UUID, query: str, page: int, limit: int) -> CustomerPage:
    digits = re.sub(r"\D", "", query)
    async with env.engine.connect() as conn:
        found, total = await customer_queries.search(
            conn,
            org_id=org_id,
            query=query,
            phone_digits=digits if len(digits) >= 3 else None,
            limit=limit,
            offset=(page - 1) * limit,
        )
        card_id = await default_card(conn, org_id)
        views = [await view(conn, c, card_id) for c in found]
    return CustomerPage(customers=views, pagination=Pagination(page=page, limit=limit, total=total))


async def signed_qr(env: Env, org_id: uuid.UUID, code: str) -> qr.SignedQr:
    async with env.engine.connect() as conn:
        customer = await context.customer_by_code(conn, org_id, code)
    return qr.sign(env.secret, org_id=org_id, code=customer.code, now=env.now, ttl_s=env.qr_ttl_s)
