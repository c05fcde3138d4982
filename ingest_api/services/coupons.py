"""Coupon verification and consumption. Consumption is one conditional UPDATE, so
of two cashiers redeeming one coupon at once, exactly one succeeds."""

from __future__ import annotations

import uuid
from datetime import datetime

from ingest_api.errors import ApiError
from ingest_api.services import context, pins, presets
from ingest_api.services.env import Env
from ingest_api.services.presets import Action
from punchline.db.repositories import coupons, customer_queries, domain_events
from punchline.db.repositories.coupons import CouponRow
from schemas.coupons import CouponOut, CouponStatus, RewardKind

# Stamp-card coupons carry the rule engine's reward types; reward coupons the API's.
_KINDS = {
    "product": RewardKind.product,
    "percent": RewardKind.percent_discount,
    "percent_discount": RewardKind.percent_discount,
    "fixed": RewardKind.fixed_amount,
    "fixed_amount": RewardKind.fixed_amount,
}


def reward_kind(stored: str) -> RewardKind:
    return _KINDS.get(stored.lower(), RewardKind.product)


def _expired(coupon: CouponRow, now: datetime) -> bool:
    return coupon.expires_at is not None and coupon.expires_at <= now


def status_of(coupon: CouponRow, now: datetime) -> CouponStatus:
    if coupon.status == "issued" and _expired(coupon, now):
        return CouponStatus.expired
    try:
        return CouponStatus(coupon.status)
    except ValueError:  # an unknown stored status cannot be redeemed
        return CouponStatus.voided


def out(coupon: CouponRow, now: datetime) -> CouponOut:
    return CouponOut(
        id=str(coupon.id),
        name=coupon.reward_name,
        type=reward_kind(coupon.reward_type),
        value=coupon.reward_value,
        status=status_of(coupon, now),
        customer_code=coupon.customer_code,
        source=coupon.source,
        card_id=coupon.card_id,
        reward_id=str(coupon.reward_id) if coupon.reward_id else None,
        issued_at=coupon.issued_at,
        expires_at=coupon.expires_at,
        redeemed_at=coupon.redeemed_at,
    )


def _not_found() -> ApiError:
    return ApiError(404, "coupon_not_found", "No coupon with that token in this org.")


def refusal(coupon: CouponRow | None, now: datetime) -> ApiError:
    """Why a coupon cannot be redeemed: 404 unknown, 409 used or voided, 410 expired."""
    if coupon is None:
        return _not_found()
    status = status_of(coupon, now)
    if status is CouponStatus.redeemed:
        return ApiError(
            409, "already_used", "This coupon was already used.", redeemed_at=_iso(coupon)
        )
    if status is CouponStatus.voided:
        return ApiError(409, "coupon_voided", "This coupon was voided.")
    return ApiError(410, "coupon_expired", "This coupon has expired.")


def _iso(coupon: CouponRow) -> str | None:
    return coupon.redeemed_at.isoformat() if coupon.redeemed_at else None


async def verify(env: Env, org_id: uuid.UUID, token: str) -> CouponOut:
    async with env.engine.connect() as conn:
        coupon = await coupons.by_token(conn, org_id=org_id, token=token)
    if coupon is None:
        raise _not_found()
    return out(coupon, env.now)


async def redeem(
    env: Env, org_id: uuid.UUID, token: str, *, pin: str | None, manual_code: bool
) -> CouponOut:
    async with env.engine.begin() as conn:
        org = await context.load_org(conn, org_id)
        context.require_subscription(org)
        presets.check_manual_code(org.verification_preset, manual_code)
        coupon = await coupons.by_token(conn, org_id=org_id, token=token)
        if coupon is None or status_of(coupon, env.now) is not CouponStatus.issued:
            raise refusal(coupon, env.now)
        customer = await customer_queries.find(conn, org_id=org_id, code=coupon.customer_code)
        if customer is None:
            raise context.not_found()
        context.require_active(customer)
        gate = await pins.gate_for(
            conn,
            env,
            preset=org.verification_preset,
            customer=customer,
            action=Action.coupon_redeem,
            pin=pin,
        )
    gate.raise_if_refused()
    async with env.engine.begin() as conn:
        await pins.spend(conn, gate, now=env.now)
        used = await coupons.consume(conn, org_id=org_id, token=token, now=env.now)
        if used is None:
            raise refusal(await coupons.by_token(conn, org_id=org_id, token=token), env.now)
        await domain_events.add(
            conn,
            org_id=org_id,
            customer_id=used.customer_id,
            event_type="coupon.redeemed",
            payload={
                "coupon_id": str(used.id),
                "customer_code": used.customer_code,
                "name": used.reward_name,
                "redeemed_at": env.now.isoformat(),
            },
        )
    return out(used, env.now)
