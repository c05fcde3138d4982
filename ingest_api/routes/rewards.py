"""``GET /v1/rewards`` and ``POST /v1/redemptions`` (seed 003)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ingest_api.auth import PosKey
from ingest_api.rate_limits import rate_limited
from ingest_api.routes.common import EnvDep
from ingest_api.services import rewards as service
from schemas.rewards import RedemptionIn, RedemptionOut, RewardsOut

router = APIRouter(tags=["rewards"], dependencies=[Depends(rate_limited("redeem"))])


@router.get("/v1/rewards", response_model=RewardsOut)
async def list_rewards(principal: PosKey, env: EnvDep) -> RewardsOut:
    return RewardsOut(rewards=await service.catalogue(env, principal.org_id))


@router.post("/v1/redemptions", response_model=RedemptionOut)
async def post_redemption(body: RedemptionIn, principal: PosKey, env: EnvDep) -> RedemptionOut:
    return await service.redeem_reward(
        env,
        service.RedemptionCommand(
            org_id=principal.org_id,
            customer=body.customer,
            reward_id=body.reward_id,
            external_id=body.external_id,
            pin=body.verification_pin,
            manual_code=body.manual_code,
        ),
    )
