"""Order lifecycle: cancel, delete and refund go through Kafka on the order's key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header

from ingest_api.auth import PosKey
from ingest_api.deps import EngineDep, ProducerDep, SettingsDep, WaiterDep
from ingest_api.errors import ApiError
from ingest_api.prefer import preferred_wait
from ingest_api.responses import JSONResponse
from ingest_api.routes.orders import ExternalIdPath, status_url, transaction_out
from punchline.db.repositories import transactions
from schemas.common import CustomerRef, CustomerRefType
from schemas.errors import ErrorOut
from schemas.events import IngestEvent, IngestKind, ReversalBody, partition_key
from schemas.lifecycle import CancelIn, RefundIn
from schemas.transactions import Accepted

router = APIRouter(tags=["orders"])


async def _stream_key(
    engine: Any, org_id: uuid.UUID, external_id: str, body: CancelIn | RefundIn
) -> bytes:
    if body.customer is not None:
        return partition_key(org_id, body.customer)
    async with engine.connect() as conn:
        row = await transactions.get_transaction(conn, org_id=org_id, external_id=external_id)
    if row is None or row.stream_key is None:
        raise ApiError(
            422,
            "customer_required",
            "The order has not been applied yet: send its customer so the reversal "
            "follows the order on the same stream.",
        )
    return row.stream_key.encode()


async def _reverse(
    kind: IngestKind,
    external_id: str,
    body: CancelIn | RefundIn,
    principal: Any,
    engine: Any,
    producer: Any,
    waiter: Any,
    settings: Any,
    prefer: str | None,
) -> JSONResponse:
    key = await _stream_key(engine, principal.org_id, external_id, body)
    reversal = ReversalBody(
        refund_id=body.refund_id if isinstance(body, RefundIn) else None,
        lines=tuple(body.lines) if isinstance(body, RefundIn) else None,
        reason=body.reason,
    )
    _org, _, ref = key.decode().partition(":")
    ref_type, _, ref_value = ref.partition(":")
    event = IngestEvent(
        kind=kind,
        event_id=uuid.uuid4(),
        org_id=principal.org_id,
        external_id=external_id,
        customer=CustomerRef(type=CustomerRefType(ref_type), value=ref_value),
        accepted_at=datetime.now(UTC),
        reversal=reversal,
    )
    await producer.send_events([event])
    url = status_url(event.tx_external_id, event.event_id, kind.value)
    wait_s = preferred_wait(prefer, cap_s=settings.max_wait_s)
    if wait_s > 0:
        row = await waiter.wait((event.org_id, event.tx_external_id, kind.value), wait_s)
        if row is not None and row.status != "parked":
            out = transaction_out(row, event.event_id)
            return JSONResponse(out.model_dump(mode="json"), status_code=200)
    accepted = Accepted(
        external_id=event.tx_external_id, event_id=str(event.event_id), status_url=url
    )
    return JSONResponse(
        accepted.model_dump(mode="json"), status_code=202, headers={"Location": url}
    )


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "applied within the Prefer: wait budget"},
    422: {"model": ErrorOut, "description": "customer_required or validation_error"},
    503: {"model": ErrorOut, "description": "broker unavailable"},
}


def _whole_order_route(kind: IngestKind) -> None:
    """Cancel and delete take back everything the order earned and still holds."""

    async def reverse_whole_order(
        external_id: ExternalIdPath,
        principal: PosKey,
        engine: EngineDep,
        producer: ProducerDep,
        waiter: WaiterDep,
        settings: SettingsDep,
        body: Annotated[CancelIn | None, Body()] = None,
        prefer: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        return await _reverse(
            kind,
            external_id,
            body or CancelIn(),
            principal,
            engine,
            producer,
            waiter,
            settings,
            prefer,
        )

    router.add_api_route(
        f"/v1/orders/{{external_id}}/{kind.value}",
        reverse_whole_order,
        methods=["POST"],
        status_code=202,
        response_model=Accepted,
        responses=_RESPONSES,
        name=f"{kind.value}_order",
        summary=f"{kind.value.capitalize()} an order",
    )


_whole_order_route(IngestKind.cancel)
_whole_order_route(IngestKind.delete)


@router.post(
    "/v1/orders/{external_id}/refund",
    status_code=202,
    response_model=Accepted,
    responses=_RESPONSES,
)
async def refund_order(
    external_id: ExternalIdPath,
    body: RefundIn,
    principal: PosKey,
    engine: EngineDep,
    producer: ProducerDep,
    waiter: WaiterDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    return await _reverse(
        IngestKind.refund, external_id, body, principal, engine, producer, waiter, settings, prefer
    )
