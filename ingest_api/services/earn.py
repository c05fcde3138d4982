"""Earn without order lines (``/webhook/pos``, ``POST /v1/earn``): asynchronous like
every earn. The edge validates, gates (Strict preset: PIN before producing),
produces with acks=all, and may wait for the worker's outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ingest_api.errors import ApiError
from ingest_api.services import context, customers, pins, presets
from ingest_api.services.env import Env
from ingest_api.services.presets import Action
from punchline.db.repositories import customer_queries
from punchline.db.repositories.customer_queries import CustomerRecord
from punchline.db.repositories.transactions import TransactionRow
from punchline.db.repositories.wallets import POINTS, stamp_asset
from schemas.common import CustomerRef, CustomerRefType
from schemas.events import CardType, EarnBody, IngestEvent, IngestKind

KIND = IngestKind.earn.value

# A rejected earn's code → the status a synchronous client expects for it.
_REJECTED_STATUS = {"customer_not_found": 404, "customer_blocked": 403}


async def admit(
    env: Env, org_id: uuid.UUID, ref: CustomerRef, *, pin: str | None, manual_code: bool
) -> CustomerRecord:
    """The customer to credit, once every synchronous gate of an earn has passed.

    Earn is never subscription-gated. Only Strict asks for a PIN, and it does so
    before anything reaches Kafka.
    """
    async with env.engine.begin() as conn:
        org = await context.load_org(conn, org_id)
        presets.check_manual_code(org.verification_preset, manual_code)
        customer = await context.customer_by_ref(conn, org_id, ref)
        context.require_active(customer)
        gate = await pins.gate_for(
            conn,
            env,
            preset=org.verification_preset,
            customer=customer,
            action=Action.earn,
            pin=pin,
        )
    gate.raise_if_refused()
    if gate.verified is not None:
        async with env.engine.begin() as conn:
            await pins.spend(conn, gate, now=env.now)
    return customer


def earn_event(
    *,
    org_id: uuid.UUID,
    external_id: str,
    customer: CustomerRecord,
    card_type: CardType,
    amount_cents: int | None,
    stamps: int | None,
    occurred_at: datetime,
    accepted_at: datetime,
    stamp_card_id: str | None = None,
    store_id: str | None = None,
) -> IngestEvent:
    # Keyed by the canonical code, so every event of this customer shares a partition.
    return IngestEvent(
        kind=IngestKind.earn,
        event_id=uuid.uuid4(),
        org_id=org_id,
        external_id=external_id,
        customer=CustomerRef(type=CustomerRefType.code, value=customer.code),
        accepted_at=accepted_at,
        earn=EarnBody(
            card_type=card_type,
            amount_cents=amount_cents,
            stamps=stamps,
            stamp_card_id=stamp_card_id,
            occurred_at=occurred_at,
            store_id=store_id,
        ),
    )


def refused(row: TransactionRow) -> ApiError | None:
    if row.status != "rejected":
        return None
    code = row.error_code or "rejected"
    return ApiError(_REJECTED_STATUS.get(code, 422), code, "The earn was rejected.")


async def loyalite_data(env: Env, row: TransactionRow, customer_id: int) -> dict[str, Any]:
    """Seed 001's ``data``: the balances after the earn, and the coupon a full card issued."""
    async with env.engine.connect() as conn:
        wallets = await customer_queries.balances(conn, customer_id)
        card_id = await customers.default_card(conn, row.org_id)
    data: dict[str, Any] = {
        "stamps": wallets.get(stamp_asset(card_id), 0),
        "points": wallets.get(POINTS, 0),
    }
    issued = [{"id": c["id"], "name": c["name"], "qr_token": c["qr_token"]} for c in row.coupons]
    if issued:
        data["coupon"] = issued[0]
    if len(issued) > 1:
        data["coupons"] = issued
    return data
