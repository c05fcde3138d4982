"""``POST /v1/admin/customers/{code}/points``: a manual adjustment with an audit trail.

One transaction: lock the points wallet, check the org's negative-balance
policy, write the ledger entry (kind ``adjustment``, with the reason and the
key that made it), move the wallet and add a ``points.adjusted`` outbox event.
The same ``external_id`` again replays the first answer and moves nothing.
Adjustments change the balance only: lifetime points and tier stay as earned.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from ingest_api.errors import ApiError
from ingest_api.services import context, pins, presets
from ingest_api.services.admin_customers import customer_erased, find
from ingest_api.services.env import Env
from ingest_api.services.presets import Action
from punchline.db.repositories import adjustments, domain_events
from punchline.db.repositories.adjustments import AdjustmentRow
from punchline.db.repositories.wallets import POINTS
from schemas.admin import NegativeBalancePolicy, PointsAdjustIn, PointsAdjustOut
from schemas.outbound_events import EventType


def _conflict() -> ApiError:
    return ApiError(
        409, "idempotency_conflict", "This external_id was already used for a different request."
    )


async def _replay(
    conn: AsyncConnection,
    found: AdjustmentRow,
    customer_id: int,
    code: str,
    external_id: str,
    body: PointsAdjustIn,
) -> PointsAdjustOut:
    if (found.customer_id, found.delta, found.reason) != (customer_id, body.points, body.reason):
        raise _conflict()
    balance = await adjustments.balance_after(
        conn, customer_id=customer_id, asset=POINTS, entry_id=found.id
    )
    return PointsAdjustOut(
        external_id=external_id,
        customer_code=code,
        adjustment=found.delta,
        new_balance=balance,
        reason=found.reason or "",
        actor=found.actor or "",
        replayed=True,
    )


async def _pin_gate(
    env: Env, org_id: uuid.UUID, code: str, body: PointsAdjustIn, external_id: str
) -> pins.PinGate:
    """Balanced and Strict orgs gate balance adjustments with the customer's PIN (seed 001).

    A retry of an adjustment that already happened replays without asking again.
    """
    async with env.engine.begin() as conn:
        org = await context.load_org(conn, org_id)
        if not presets.requires_pin(org.verification_preset, Action.adjust):
            return pins.OPEN
        if await adjustments.find(conn, org_id=org_id, external_id=external_id, asset=POINTS):
            return pins.OPEN
        customer = await context.customer_by_code(conn, org_id, code)
        gate = await pins.gate_for(
            conn,
            env,
            preset=org.verification_preset,
            customer=customer,
            action=Action.adjust,
            pin=body.verification_pin,
        )
    gate.raise_if_refused()
    return gate


async def adjust(
    env: Env, org_id: uuid.UUID, code: str, body: PointsAdjustIn, *, actor: str
) -> PointsAdjustOut:
    external_id = body.external_id or f"adj-{uuid.uuid4()}"
    engine = env.engine
    gate = await _pin_gate(env, org_id, code, body, external_id)
    async with engine.begin() as conn:
        org = await context.load_org(conn, org_id)
        customer = await find(conn, org_id, code)
        if customer.erased_at is not None:
            raise customer_erased()
        balance = await adjustments.lock_wallet(
            conn, org_id=org_id, customer_id=customer.id, asset=POINTS
        )
        found = await adjustments.find(conn, org_id=org_id, external_id=external_id, asset=POINTS)
        if found is not None:
            return await _replay(conn, found, customer.id, customer.code, external_id, body)
        allow_negative = org.negative_balance_policy == NegativeBalancePolicy.allow_negative
        if balance + body.points < 0 and not allow_negative:
            raise ApiError(
                422,
                "insufficient_balance",
                "The adjustment would take the balance below zero.",
                balance=balance,
            )
        await pins.spend(conn, gate, now=env.now)
        new_balance = await adjustments.apply(
            conn,
            org_id=org_id,
            customer_id=customer.id,
            asset=POINTS,
            delta=body.points,
            external_id=external_id,
            reason=body.reason,
            actor=actor,
        )
        if new_balance is None:  # another customer's adjustment committed this id first
            raise _conflict()
        await domain_events.add(
            conn,
            org_id=org_id,
            customer_id=customer.id,
            event_type=EventType.points_adjusted.value,
            payload={
                "customer_code": customer.code,
                "external_id": external_id,
                "adjustment": body.points,
                "balance": new_balance,
                "reason": body.reason,
                "actor": actor,
            },
        )
    return PointsAdjustOut(
        external_id=external_id,
        customer_code=customer.code,
        adjustment=body.points,
        new_balance=new_balance,
        reason=body.reason,
        actor=actor,
    )
