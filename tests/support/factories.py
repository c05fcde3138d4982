"""Keyword-only factories for test data."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.db.repositories import customers, orgs, rewards

# Tests post thousands of requests with one key: far above seed 000's defaults.
GENEROUS_LIMITS = {
    "earn": "1000000/minute",
    "redeem": "1000000/minute",
    "coupons": "1000000/minute",
    "customer": "1000000/minute",
}


@dataclass
class Tenant:
    org_id: uuid.UUID
    key: str
    customer_codes: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.key}


async def create_tenant(
    engine: AsyncEngine, *, customers_count: int = 3, timezone: str = "UTC"
) -> Tenant:
    async with engine.begin() as conn:
        org_id = await orgs.create_org(conn, name=f"org-{secrets.token_hex(3)}", timezone=timezone)
        _, key = await orgs.create_api_key(
            conn,
            org_id=org_id,
            name="test",
            scopes=["pos", "admin"],
            rate_limits=GENEROUS_LIMITS,
        )
        codes = []
        for i in range(customers_count):
            row = await customers.insert_customer(
                conn, org_id=org_id, email=f"c{i}-{secrets.token_hex(3)}@example.com"
            )
            codes.append(row.code)
    return Tenant(org_id=org_id, key=key, customer_codes=codes)


def order_body(
    *,
    customer_code: str,
    external_id: str | None = None,
    lines: list[dict[str, Any]] | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "customer": {"type": "code", "value": customer_code},
        "external_id": external_id or f"ord-{secrets.token_hex(6)}",
        "occurred_at": (occurred_at or datetime(2026, 11, 2, 9, 30, tzinfo=UTC)).isoformat(),
        "currency": "EUR",
        "lines": lines
        or [
            {
                "sku": "CAP",
                "name": "Cappuccino",
                "category": "drinks",
                "quantity": 2,
                "unit_price_cents": 350,
            },
            {
                "sku": "CAKE",
                "name": "Cake",
                "category": "food",
                "quantity": 1,
                "unit_price_cents": 450,
            },
        ],
    }


# --- POS API (issue 4) -------------------------------------------------------


async def create_key(
    engine: AsyncEngine,
    *,
    org_id: uuid.UUID,
    scopes: list[str],
    rate_limits: dict[str, str] | None = None,
) -> str:
    async with engine.begin() as conn:
        _, key = await orgs.create_api_key(
            conn, org_id=org_id, name="test", scopes=scopes, rate_limits=rate_limits
        )
    return key


async def configure_org(
    engine: AsyncEngine,
    *,
    org_id: uuid.UUID,
    preset: str | None = None,
    subscription_status: str | None = None,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE orgs SET verification_preset = COALESCE(:p, verification_preset),"
                " subscription_status = COALESCE(:s, subscription_status) WHERE id = :org"
            ),
            {"p": preset, "s": subscription_status, "org": org_id},
        )


async def customer_id(engine: AsyncEngine, *, org_id: uuid.UUID, code: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT id FROM customers WHERE org_id = :org AND code = :code"),
                    {"org": org_id, "code": code},
                )
            ).scalar_one()
        )


async def set_customer(
    engine: AsyncEngine,
    *,
    org_id: uuid.UUID,
    code: str,
    status: str | None = None,
    tier: str | None = None,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE customers SET status = COALESCE(:st, status), tier = COALESCE(:t, tier)"
                " WHERE org_id = :org AND code = :code"
            ),
            {"st": status, "t": tier, "org": org_id, "code": code},
        )


async def credit(
    engine: AsyncEngine,
    *,
    org_id: uuid.UUID,
    code: str,
    amount: int,
    asset: str = "points",
    external_id: str | None = None,
) -> None:
    """Credit a wallet with a matching ledger entry (kind ``adjust``)."""
    cid = await customer_id(engine, org_id=org_id, code=code)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ledger_entries (org_id, customer_id, asset, delta, kind, external_id)"
                " VALUES (:org, :c, :a, :n, 'adjust', :ext)"
            ),
            {
                "org": org_id,
                "c": cid,
                "a": asset,
                "n": amount,
                "ext": external_id or f"adj-{secrets.token_hex(6)}",
            },
        )
        await conn.execute(
            text(
                "INSERT INTO wallets (customer_id, asset, org_id, balance)"
                " VALUES (:c, :a, :org, :n)"
                " ON CONFLICT (customer_id, asset) DO UPDATE SET balance = wallets.balance + :n"
            ),
            {"org": org_id, "c": cid, "a": asset, "n": amount},
        )


async def create_coupon(
    engine: AsyncEngine,
    *,
    org_id: uuid.UUID,
    code: str,
    name: str = "Free Coffee",
    reward_type: str = "product",
    reward_value: int = 0,
    status: str = "issued",
    expires_at: datetime | None = None,
) -> str:
    """A stamp-card coupon as the worker writes it; returns its token."""
    cid = await customer_id(engine, org_id=org_id, code=code)
    token = secrets.token_urlsafe(18)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO coupons (org_id, customer_id, token, source, card_id, fill_number,"
                " reward_name, reward_type, reward_value, status, expires_at)"
                " VALUES (:org, :c, :token, 'stamp_card', 'default',"
                " (SELECT count(*) + 1 FROM coupons WHERE customer_id = :c),"
                " :name, :type, :value, :status,"
                " COALESCE(:expires, now() + interval '30 days'))"
            ),
            {
                "org": org_id,
                "c": cid,
                "token": token,
                "name": name,
                "type": reward_type,
                "value": reward_value,
                "status": status,
                "expires": expires_at,
            },
        )
    return token


async def create_reward(
    engine: AsyncEngine,
    *,
    org_id: uuid.UUID,
    name: str = "Free coffee",
    points_cost: int = 50,
    type: str = "product",
    value: int = 0,
    required_tier: str | None = None,
    active: bool = True,
) -> uuid.UUID:
    async with engine.begin() as conn:
        row = await rewards.create(
            conn,
            org_id=org_id,
            name=name,
            points_cost=points_cost,
            type=type,
            value=value,
            required_tier=required_tier,
            icon="☕",
            active=active,
        )
    return row.id


async def wallet_balance(engine: AsyncEngine, *, org_id: uuid.UUID, code: str, asset: str) -> int:
    async with engine.connect() as conn:
        value = (
            await conn.execute(
                text(
                    "SELECT w.balance FROM wallets w JOIN customers c ON c.id = w.customer_id"
                    " WHERE c.org_id = :org AND c.code = :code AND w.asset = :a"
                ),
                {"org": org_id, "code": code, "a": asset},
            )
        ).scalar()
    return int(value or 0)


async def row_counts(engine: AsyncEngine, org_id: uuid.UUID) -> dict[str, int]:
    """Rows an org owns in every table a POS request can write."""
    tables = [
        "customers",
        "transactions",
        "ledger_entries",
        "wallets",
        "coupons",
        "outbox",
        "pin_challenges",
    ]
    async with engine.connect() as conn:
        return {
            t: int(
                (
                    await conn.execute(
                        text(f"SELECT count(*) FROM {t} WHERE org_id = :org"), {"org": org_id}
                    )
                ).scalar_one()
            )
            for t in tables
        }


# --- Merchant administration and webhooks (issue 5) ----------------------------------


async def create_customer(
    engine: AsyncEngine,
    *,
    org_id: uuid.UUID,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> str:
    """A customer with the given profile; returns its code."""
    async with engine.begin() as conn:
        row = await customers.insert_customer(
            conn, org_id=org_id, name=name, email=email, phone=phone
        )
    return row.code


async def outbox_events(
    engine: AsyncEngine, *, org_id: uuid.UUID, event_type: str | None = None
) -> list[dict[str, Any]]:
    """The org's outbox rows (event_id, event_type, payload), oldest first."""
    sql = "SELECT event_id, event_type, payload FROM outbox WHERE org_id = :org"
    if event_type is not None:
        sql += " AND event_type = :t"
    async with engine.connect() as conn:
        rows = await conn.execute(text(sql + " ORDER BY id"), {"org": org_id, "t": event_type})
        return [dict(r._mapping) for r in rows]
