"""The reward catalogue, and redeeming a reward: points off, a coupon on, atomically."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ingest_api.errors import ApiError
from ingest_api.services import context, org_rules, pins, presets
from ingest_api.services.coupons import reward_kind
from ingest_api.services.env import Env
from ingest_api.services.presets import Action
from ingest_api.services.redeem import replay
from punchline.db.repositories import coupons, domain_events, rewards, stored_answers, wallets
from punchline.db.repositories.customer_queries import CustomerRecord
from punchline.db.repositories.rewards import RewardRow
from schemas.common import CustomerRef
from schemas.rewards import IssuedCoupon, RedemptionOut, RewardOut

KIND = "redemption"


def reward_out(row: RewardRow) -> RewardOut:
    return RewardOut(
        id=str(row.id),
        name=row.name,
        description=row.description,
        points_cost=row.points_cost,
        type=reward_kind(row.type),
        value=row.value,
        required_tier=row.required_tier,
        icon=row.icon,
    )


async def catalogue(env: Env, org_id: uuid.UUID) -> list[RewardOut]:
    async with env.engine.connect() as conn:
        return [reward_out(r) for r in await rewards.list_active(conn, org_id)]


@dataclass(frozen=True, slots=True)
class RedemptionCommand:
    org_id: uuid.UUID
    customer: CustomerRef
    reward_id: uuid.UUID
    external_id: str
    pin: str | None
    manual_code: bool


class _Claimed(Exception):
    pass


async def redeem_reward(env: Env, cmd: RedemptionCommand) -> RedemptionOut:
    async with env.engine.begin() as conn:
        org = await context.load_org(conn, cmd.org_id)
        context.require_subscription(org)
        presets.check_manual_code(org.verification_preset, cmd.manual_code)
        customer = await context.customer_by_ref(conn, cmd.org_id, cmd.customer)
        request: dict[str, Any] = {"customer_id": customer.id, "reward_id": str(cmd.reward_id)}
        stored = await stored_answers.get(
            conn, org_id=cmd.org_id, external_id=cmd.external_id, kind=KIND
        )
        if stored is not None:
            return RedemptionOut.model_validate(replay(stored, request))
        context.require_active(customer)
        reward = await rewards.get_active(conn, org_id=cmd.org_id, reward_id=cmd.reward_id)
        if reward is None:
            raise ApiError(404, "reward_not_found", "No active reward with that id.")
        rule_set = await org_rules.active_rule_set(conn, cmd.org_id)
        if not org_rules.tier_reached(
            rule_set, customer_tier=customer.tier, required=reward.required_tier
        ):
            raise ApiError(
                422,
                "tier_locked",
                "The customer's tier is below the reward's.",
                required_tier=reward.required_tier,
            )
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
        return await _buy(env, cmd, customer, reward, request, gate)
    except _Claimed:
        async with env.engine.connect() as conn:
            stored = await stored_answers.get(
                conn, org_id=cmd.org_id, external_id=cmd.external_id, kind=KIND
            )
        assert stored is not None
        return RedemptionOut.model_validate(replay(stored, request))


async def _buy(
    env: Env,
    cmd: RedemptionCommand,
    customer: CustomerRecord,
    reward: RewardRow,
    request: dict[str, Any],
    gate: pins.PinGate,
) -> RedemptionOut:
    coupon_id = uuid.uuid4()
    token = secrets.token_urlsafe(18)
    expires_at = env.now + timedelta(days=reward.validity_days)
    async with env.engine.begin() as conn:
        await pins.spend(conn, gate, now=env.now)
        balance = await wallets.balance(
            conn, customer_id=customer.id, asset=wallets.POINTS, lock=True
        )
        if balance < reward.points_cost:
            raise ApiError(
                422,
                "insufficient_points",
                "Not enough points for this reward.",
                balance=balance,
                points_cost=reward.points_cost,
            )
        coupon = IssuedCoupon(
            id=str(coupon_id),
            name=reward.name,
            qr_token=token,
            type=reward_kind(reward.type),
            value=reward.value,
            expires_at=expires_at,
        )
        out = RedemptionOut(
            external_id=cmd.external_id,
            reward_id=str(reward.id),
            customer_code=customer.code,
            points_redeemed=reward.points_cost,
            point_balance=balance - reward.points_cost,
            coupon=coupon,
        )
        tx_id = await stored_answers.claim(
            conn,
            org_id=cmd.org_id,
            external_id=cmd.external_id,
            kind=KIND,
            customer_id=customer.id,
            points=-reward.points_cost,
            stamps={},
            coupons=[coupon.model_dump(mode="json")],
            request=request,
            response=out.model_dump(mode="json"),
            now=env.now,
        )
        if tx_id is None:
            raise _Claimed
        if reward.points_cost:
            await wallets.debit(
                conn,
                org_id=cmd.org_id,
                customer_id=customer.id,
                asset=wallets.POINTS,
                amount=reward.points_cost,
                kind=KIND,
                external_id=cmd.external_id,
                transaction_id=tx_id,
                reason=f"reward {reward.id}",
            )
        await coupons.issue_for_reward(
            conn,
            coupon_id=coupon_id,
            org_id=cmd.org_id,
            customer_id=customer.id,
            token=token,
            reward_id=reward.id,
            reward_name=reward.name,
            reward_type=reward.type,
            reward_value=reward.value,
            transaction_id=tx_id,
            issued_at=env.now,
            expires_at=expires_at,
        )
        await domain_events.add(
            conn,
            org_id=cmd.org_id,
            customer_id=customer.id,
            event_type="reward.redeemed",
            payload={
                "external_id": cmd.external_id,
                "customer_code": customer.code,
                "reward_id": str(reward.id),
                "points": reward.points_cost,
                "coupon_id": str(coupon_id),
            },
        )
    return out
