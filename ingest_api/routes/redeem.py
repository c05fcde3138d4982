"""``POST /v1/redeem``: synchronous, never overdrawn, idempotent on external_id."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ingest_api.auth import PosKey
from ingest_api.rate_limits import rate_limited
from ingest_api.routes.common import EnvDep
from ingest_api.services import redeem as service
from schemas.redeem import RedeemIn, RedeemOut

router = APIRouter(tags=["redeem"], dependencies=[Depends(rate_limited("redeem"))])


@router.post("/v1/redeem", response_model=RedeemOut)
async def post_redeem(body: RedeemIn, principal: PosKey, env: EnvDep) -> RedeemOut:
    return await service.redeem(
        env,
        service.RedeemCommand(
            org_id=principal.org_id,
            customer=body.customer,
            card_type=body.card_type,
            value=body.value,
            external_id=body.external_id,
            pin=body.verification_pin,
            manual_code=body.manual_code,
        ),
    )
