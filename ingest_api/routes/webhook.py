"""Loyalite's POS API (seeds 000 and 001), kept exactly: bodies, the ``{"data": …}``
envelope, error codes and statuses, and the ``card_type`` defaults (``point`` on
``/webhook/pos``, ``stamp`` on ``/webhook/redeem``).

``/webhook/pos`` goes through Kafka like every earn, and by default waits
(``webhook_pos_wait_s``, or ``Prefer: wait=N``) for the worker's outcome, because
Loyalite clients read ``data.points`` from its answer. If the outcome is not in
within the wait, the answer is 202 with a ``status_url``.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query

from ingest_api.auth import PosKey
from ingest_api.deps import ProducerDep, SettingsDep, WaiterDep
from ingest_api.prefer import preferred_wait
from ingest_api.rate_limits import rate_limited
from ingest_api.responses import JSONResponse
from ingest_api.routes.common import EnvDep, envelope
from ingest_api.routes.customers import one_of
from ingest_api.routes.earn import earn_status_url
from ingest_api.services import coupons, customers, earn, enrollment, redeem
from schemas.common import CustomerRef, CustomerRefType
from schemas.customers import CustomerOut, EnrollIn
from schemas.webhook import Envelope, PosCouponRedeemIn, PosEarnIn, PosRedeemIn

router = APIRouter(tags=["loyalite"])
_WAIT_DIRECTIVE = re.compile(r"\bwait\s*=", re.IGNORECASE)


def _customer_data(out: CustomerOut) -> dict[str, Any]:
    return {
        "customer_code": out.customer_code,
        "masked_email": out.masked_email,
        "stamp_count": out.stamp_count,
        "point_balance": out.point_balance,
    }


def _by_code(code: str) -> CustomerRef:
    return CustomerRef(type=CustomerRefType.code, value=code)


@router.get(
    "/webhook/customer", response_model=Envelope, dependencies=[Depends(rate_limited("customer"))]
)
async def get_customer(
    principal: PosKey,
    env: EnvDep,
    customer_code: Annotated[str | None, Query(pattern=r"^[0-9A-Fa-f]{8}$")] = None,
    qr: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
) -> dict[str, Any]:
    kind, value = one_of(customer_code=customer_code, qr=qr)
    if kind == "qr":
        out = await customers.by_qr(env, principal.org_id, value)
    else:
        out = await customers.by_code(env, principal.org_id, value)
    return envelope(_customer_data(out))


@router.post(
    "/webhook/customer", response_model=Envelope, dependencies=[Depends(rate_limited("customer"))]
)
async def post_customer(body: EnrollIn, principal: PosKey, env: EnvDep) -> dict[str, Any]:
    out = await enrollment.enroll(env, principal.org_id, body)
    return envelope({**_customer_data(out), "is_new": out.is_new})


@router.post(
    "/webhook/pos",
    response_model=Envelope,
    responses={202: {"model": Envelope, "description": "not applied within the wait: pending"}},
    dependencies=[Depends(rate_limited("earn"))],
)
async def post_pos(
    body: PosEarnIn,
    principal: PosKey,
    env: EnvDep,
    producer: ProducerDep,
    waiter: WaiterDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> Any:
    customer = await earn.admit(
        env,
        principal.org_id,
        _by_code(body.customer_code),
        pin=body.verification_pin,
        manual_code=body.manual_code,
    )
    event = earn.earn_event(
        org_id=principal.org_id,
        external_id=body.external_id or f"pos-{uuid.uuid4().hex}",
        customer=customer,
        card_type=body.card_type,
        amount_cents=body.amount_cents,
        stamps=body.stamps,
        occurred_at=env.now,
        accepted_at=env.now,
    )
    await producer.send_events([event])
    wait_s = settings.webhook_pos_wait_s
    if prefer and _WAIT_DIRECTIVE.search(prefer):
        wait_s = preferred_wait(prefer, cap_s=settings.max_wait_s)
    row = None
    if wait_s > 0:
        row = await waiter.wait((event.org_id, event.external_id, earn.KIND), wait_s)
    url = earn_status_url(event.external_id, event.event_id)
    if row is None:
        pending = {"status": "pending", "external_id": event.external_id, "status_url": url}
        return JSONResponse(envelope(pending), status_code=202, headers={"Location": url})
    refusal = earn.refused(row)
    if refusal is not None:
        raise refusal
    return envelope(await earn.loyalite_data(env, row, customer.id))


@router.post(
    "/webhook/redeem", response_model=Envelope, dependencies=[Depends(rate_limited("redeem"))]
)
async def post_redeem(body: PosRedeemIn, principal: PosKey, env: EnvDep) -> dict[str, Any]:
    out = await redeem.redeem(
        env,
        redeem.RedeemCommand(
            org_id=principal.org_id,
            customer=_by_code(body.customer_code),
            card_type=body.card_type,
            value=body.value,
            external_id=body.external_id or f"redeem-{uuid.uuid4().hex}",
            pin=body.verification_pin,
            manual_code=body.manual_code,
        ),
    )
    return envelope({"stamps": out.balances.stamps, "points": out.balances.points})


@router.post(
    "/webhook/coupons/redeem",
    response_model=Envelope,
    dependencies=[Depends(rate_limited("coupons"))],
)
async def post_coupon_redeem(
    body: PosCouponRedeemIn, principal: PosKey, env: EnvDep
) -> dict[str, Any]:
    out = await coupons.redeem(
        env,
        principal.org_id,
        body.token,
        pin=body.verification_pin,
        manual_code=body.manual_code,
    )
    return envelope(out.model_dump(mode="json"))
