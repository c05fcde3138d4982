"""``GET /v1/coupons/{token}`` (verify) and ``POST /v1/coupons/redeem`` (consume)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from ingest_api.auth import PosKey
from ingest_api.rate_limits import rate_limited
from ingest_api.routes.common import EnvDep
from ingest_api.services import coupons as service
from schemas.coupons import CouponOut, CouponRedeemIn

router = APIRouter(tags=["coupons"], dependencies=[Depends(rate_limited("coupons"))])


@router.get("/v1/coupons/{token}", response_model=CouponOut)
async def get_coupon(
    token: Annotated[str, Path(min_length=1, max_length=200)], principal: PosKey, env: EnvDep
) -> CouponOut:
    return await service.verify(env, principal.org_id, token)


@router.post("/v1/coupons/redeem", response_model=CouponOut)
async def redeem_coupon(body: CouponRedeemIn, principal: PosKey, env: EnvDep) -> CouponOut:
    return await service.redeem(
        env,
        principal.org_id,
        body.token,
        pin=body.verification_pin,
        manual_code=body.manual_code,
    )
