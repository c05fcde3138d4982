"""``POST /v1/earn``: an earn without order lines, asynchronous like orders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header

from ingest_api.auth import PosKey
from ingest_api.deps import ProducerDep, SettingsDep, WaiterDep
from ingest_api.prefer import preferred_wait
from ingest_api.rate_limits import rate_limited
from ingest_api.responses import JSONResponse
from ingest_api.routes.common import EnvDep
from ingest_api.routes.orders import transaction_out
from ingest_api.services import earn as service
from schemas.earn import EarnIn
from schemas.errors import ErrorOut
from schemas.transactions import Accepted, TransactionOut

router = APIRouter(tags=["earn"], dependencies=[Depends(rate_limited("earn"))])


def earn_status_url(external_id: str, event_id: object) -> str:
    return f"/v1/transactions/{external_id}?event_id={event_id}&kind=earn"


@router.post(
    "/v1/earn",
    status_code=202,
    response_model=Accepted,
    responses={
        200: {"model": TransactionOut},
        503: {"model": ErrorOut, "description": "broker unavailable"},
    },
)
async def post_earn(
    body: EarnIn,
    principal: PosKey,
    env: EnvDep,
    producer: ProducerDep,
    waiter: WaiterDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> Any:
    customer = await service.admit(
        env,
        principal.org_id,
        body.customer,
        pin=body.verification_pin,
        manual_code=body.manual_code,
    )
    event = service.earn_event(
        org_id=principal.org_id,
        external_id=body.external_id,
        customer=customer,
        card_type=body.card_type,
        amount_cents=body.amount_cents,
        stamps=body.stamps,
        stamp_card_id=body.stamp_card_id,
        store_id=body.store_id,
        occurred_at=body.occurred_at or env.now,
        accepted_at=env.now,
    )
    await producer.send_events([event])
    url = earn_status_url(event.external_id, event.event_id)
    wait_s = preferred_wait(prefer, cap_s=settings.max_wait_s)
    if wait_s > 0:
        row = await waiter.wait((event.org_id, event.external_id, service.KIND), wait_s)
        if row is not None:
            out = transaction_out(row, event.event_id).model_copy(update={"status_url": url})
            return JSONResponse(
                out.model_dump(mode="json"),
                status_code=200,
                headers={"Preference-Applied": f"wait={int(wait_s)}"},
            )
    accepted = Accepted(external_id=event.external_id, event_id=str(event.event_id), status_url=url)
    return JSONResponse(
        accepted.model_dump(mode="json"), status_code=202, headers={"Location": url}
    )
