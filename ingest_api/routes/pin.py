"""``GET /v1/customers/{code}/pin``: the customer-facing app shows the open PIN.

Only a ``customer_app`` key may read it (no admin bypass): a PIN proves the
customer is present precisely because the merchant cannot read it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from ingest_api.auth import CustomerAppKey
from ingest_api.rate_limits import rate_limited
from ingest_api.routes.common import EnvDep
from ingest_api.services import context, pins
from schemas.customers import LivePin, PinsOut

router = APIRouter(tags=["customer app"], dependencies=[Depends(rate_limited("customer"))])


@router.get("/v1/customers/{code}/pin", response_model=PinsOut)
async def get_pin(
    code: Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{8}$")],
    principal: CustomerAppKey,
    env: EnvDep,
) -> PinsOut:
    async with env.engine.connect() as conn:
        customer = await context.customer_by_code(conn, principal.org_id, code)
        live = await pins.live_pins(conn, policy=env.pins, customer=customer, now=env.now)
    items = [
        LivePin(
            challenge_id=str(row.id),
            action=row.action,
            pin=pin,
            expires_at=row.expires_at,
            remaining_attempts=row.max_attempts - row.attempts,
        )
        for row, pin in live
    ]
    return PinsOut(customer_code=customer.code, pin=items[0].pin if items else None, pins=items)
