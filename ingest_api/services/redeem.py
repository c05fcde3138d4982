"""Synchronous redeem: never overdrawn, idempotent on ``external_id``.

Transaction 1 reads the org and the customer, replays a stored answer, and runs
the PIN check (committed even when it refuses). Transaction 2 checks and debits
the wallet in one statement (its row lock is held from there to the commit, so a
hot wallet serialises on as few round trips as possible), then writes the stored
answer, the ledger entry and the outbox event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ingest_api.errors import ApiError
from ingest_api.services import context, org_rules, pins, presets
from ingest_api.services.env import Env
from ingest_api.services.presets import Action
from punchline.db.repositories import customer_queries, domain_events, stored_answers, wallets
from punchline.db.repositories.customer_queries import CustomerRecord
from punchline.db.repositories.stored_answers import StoredAnswer
from schemas.common import CustomerRef
from schemas.events import CardType
from schemas.redeem import Balances, RedeemOut

KIND = "redeem"


@dataclass(frozen=True, slots=True)
class RedeemCommand:
    org_id: uuid.UUID
    customer: CustomerRef
    card_type: CardType
    value: int
    external_id: str
    pin: str | None
    manual_code: bool


class _Claimed(Exception):
    """A concurrent request with the same external_id committed first."""


def replay(stored: StoredAnswer, request: dict[str, Any]) -> dict[str, Any]:
    if stored.request != request:
        raise ApiError(
            409,
            "idempotency_conflict",
            "This external_id was already used for a different request.",
        )
    return stored.response


async def redeem(env: Env, cmd: RedeemCommand) -> RedeemOut:
    async with env.engine.begin() as conn:
        org = await context.load_org(conn, cmd.org_id)
        context.require_subscription(org)
        presets.check_manual_code(org.verification_preset, cmd.manual_code)
        customer = await context.customer_by_ref(conn, cmd.org_id, cmd.customer)
        card_id = org_rules.default_card_id(await org_rules.active_rule_set(conn, cmd.org_id))
        asset = wallets.POINTS if cmd.card_type is CardType.point else wallets.stamp_asset(card_id)
        request = {"customer_id": customer.id, "asset": asset, "value": cmd.value}
        stored = await stored_answers.get(
            conn, org_id=cmd.org_id, external_id=cmd.external_id, kind=KIND
        )
        if stored is not None:
            return RedeemOut.model_validate(replay(stored, request))
        context.require_active(customer)
        gate = await pins.gate_for(
            conn,
            env,
            preset=org.verification_preset,
            customer=customer,
            action=Action.redeem,
            pin=cmd.pin,
        )
    gate.raise_if_refused()
    try:
        return await _debit(env, cmd, customer, asset, card_id, request, gate)
    except _Claimed:
        async with env.engine.connect() as conn:
            stored = await stored_answers.get(
                conn, org_id=cmd.org_id, external_id=cmd.external_id, kind=KIND
            )
        assert stored is not None
        return RedeemOut.model_validate(replay(stored, request))


async def _debit(
    env: Env,
    cmd: RedeemCommand,
    customer: CustomerRecord,
    asset: str,
    card_id: str,
    request: dict[str, Any],
    gate: pins.PinGate,
) -> RedeemOut:
    points_asset = cmd.card_type is CardType.point
    other_asset = wallets.stamp_asset(card_id) if points_asset else wallets.POINTS
    async with env.engine.begin() as conn:
        await pins.spend(conn, gate, now=env.now)
        other = (await customer_queries.balances(conn, customer.id)).get(other_asset, 0)
        after = await wallets.take(conn, customer_id=customer.id, asset=asset, amount=cmd.value)
        if after is None:
            raise ApiError(
                422,
                "insufficient_balance",
                "Not enough points or stamps to redeem.",
                # read after the failed take, so it includes any debit it waited for
                balance=await wallets.balance(conn, customer_id=customer.id, asset=asset),
            )
        out = RedeemOut(
            external_id=cmd.external_id,
            customer_code=customer.code,
            card_type=cmd.card_type,
            value=cmd.value,
            balances=Balances(
                points=after if points_asset else other,
                stamps=other if points_asset else after,
                stamp_card_id=card_id,
            ),
            redeemed_at=env.now,
        )
        tx_id = await stored_answers.claim(
            conn,
            org_id=cmd.org_id,
            external_id=cmd.external_id,
            kind=KIND,
            customer_id=customer.id,
            points=-cmd.value if points_asset else 0,
            stamps={} if points_asset else {card_id: -cmd.value},
            coupons=[],
            request=request,
            response=out.model_dump(mode="json"),
            now=env.now,
        )
        if tx_id is None:
            raise _Claimed
        await wallets.record_debit(
            conn,
            org_id=cmd.org_id,
            customer_id=customer.id,
            asset=asset,
            amount=cmd.value,
            kind=KIND,
            external_id=cmd.external_id,
            transaction_id=tx_id,
        )
        await domain_events.add(
            conn,
            org_id=cmd.org_id,
            customer_id=customer.id,
            event_type="points.redeemed" if points_asset else "stamps.redeemed",
            payload={
                "external_id": cmd.external_id,
                "customer_code": customer.code,
                "asset": asset,
                "value": cmd.value,
                "balance": after,
            },
        )
    return out
