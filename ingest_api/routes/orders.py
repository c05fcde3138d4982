"""``POST /v1/orders`` and ``GET /v1/transactions/{external_id}``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import ValidationError

from ingest_api.auth import PosKey, Principal
from ingest_api.deps import EngineDep, ProducerDep, SettingsDep, WaiterDep
from ingest_api.errors import ApiError
from ingest_api.lean_route import lean_route, pos_principal
from ingest_api.prefer import preferred_wait
from ingest_api.producer import EventProducer
from ingest_api.responses import JSONResponse
from ingest_api.waiter import ResultWaiter
from punchline.config import Settings
from punchline.db.repositories import transactions
from punchline.db.repositories.transactions import TransactionRow
from schemas.common import EXTERNAL_ID_PATTERN
from schemas.errors import ErrorOut
from schemas.events import IngestEvent, IngestKind
from schemas.orders import OrderIn
from schemas.transactions import Accepted, HistoryEntry, TransactionOut, TransactionStatus

router = APIRouter(tags=["orders"])

ExternalIdPath = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN)]


def status_url(external_id: str, event_id: uuid.UUID | str, kind: str = "order") -> str:
    """Where a client polls; a refund's key ``<order>#<refund_id>`` travels as query params."""
    order_id, _, refund_id = external_id.partition("#")
    url = f"/v1/transactions/{quote(order_id, safe='')}?event_id={event_id}"
    if kind != "order":
        url += f"&kind={kind}"
    if refund_id:
        url += f"&refund_id={quote(refund_id, safe='')}"
    return url


def transaction_out(
    row: TransactionRow,
    event_id: uuid.UUID | None,
    history: list[TransactionRow] | None = None,
) -> TransactionOut:
    duplicate = event_id is not None and row.event_id != event_id
    applied = row.status in ("applied", "reversed", "partially_reversed")
    return TransactionOut(
        external_id=row.external_id,
        kind=row.kind,
        status=TransactionStatus.duplicate if duplicate else TransactionStatus(row.status),
        error=row.error_code,
        points=row.points if applied else None,
        stamps=row.stamps if applied else None,
        coupons=row.coupons if applied else None,
        rules_applied=row.rules_applied if applied else None,
        rule_set_version=row.rule_set_version,
        accepted_at=row.accepted_at,
        applied_at=row.applied_at,
        reversed_points=sum(row.reversed["line_points"].values()) if row.reversed else None,
        history=[
            HistoryEntry(
                kind=h.kind,
                external_id=h.external_id,
                status=h.status,
                error=h.error_code,
                points=h.points,
                stamps=h.stamps,
                accepted_at=h.accepted_at,
                applied_at=h.applied_at,
            )
            for h in history
        ]
        if history
        else None,
        status_url=status_url(row.external_id, event_id or row.event_id, row.kind),
    )


def order_event(order: OrderIn, org_id: uuid.UUID, accepted_at: datetime) -> IngestEvent:
    return IngestEvent(
        kind=IngestKind.order,
        event_id=uuid.uuid4(),
        org_id=org_id,
        external_id=order.external_id,
        customer=order.customer,
        accepted_at=accepted_at,
        order=order,
    )


async def accept_order(
    order: OrderIn,
    principal: Principal,
    producer: EventProducer,
    waiter: ResultWaiter,
    settings: Settings,
    prefer: str | None,
) -> JSONResponse:
    event = order_event(order, principal.org_id, datetime.now(UTC))
    await producer.send_events([event])
    url = status_url(event.external_id, event.event_id)
    wait_s = preferred_wait(prefer, cap_s=settings.max_wait_s)
    if wait_s > 0:
        row = await waiter.wait((event.org_id, event.external_id, event.kind.value), wait_s)
        if row is not None:
            out = transaction_out(row, event.event_id)
            return JSONResponse(
                out.model_dump(mode="json"),
                status_code=200,
                headers={"Preference-Applied": f"wait={int(wait_s)}"},
            )
    event_id = str(event.event_id)
    body = {
        "external_id": event.external_id,
        "event_id": event_id,
        "status": TransactionStatus.pending.value,
        "status_url": url,
    }  # an Accepted, built without a model round trip
    return JSONResponse(body, status_code=202, headers={"Location": url})


async def post_order(
    order: OrderIn,
    principal: PosKey,
    producer: ProducerDep,
    waiter: WaiterDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> Any:
    return await accept_order(order, principal, producer, waiter, settings, prefer)


async def _lean_post_order(request: Request, body: bytes) -> JSONResponse | None:
    """``post_order`` without FastAPI's request machinery (see ingest_api.lean_route)."""
    try:
        order = OrderIn.model_validate_json(body)
    except ValidationError:
        return None  # FastAPI's handler answers, exactly as it always has
    principal = await pos_principal(request)
    state = request.app.state
    return await accept_order(
        order,
        principal,
        state.producer,
        state.waiter,
        state.settings,
        request.headers.get("prefer"),
    )


router.add_api_route(
    "/v1/orders",
    post_order,
    methods=["POST"],
    status_code=202,
    response_model=Accepted,
    responses={
        200: {"model": TransactionOut},
        503: {"model": ErrorOut, "description": "broker unavailable"},
    },
    route_class_override=lean_route(_lean_post_order),
)


@router.get("/v1/transactions/{external_id}", response_model=TransactionOut)
async def get_transaction(
    external_id: ExternalIdPath,
    principal: PosKey,
    engine: EngineDep,
    event_id: Annotated[uuid.UUID | None, Query()] = None,
    kind: Annotated[IngestKind, Query()] = IngestKind.order,
    refund_id: Annotated[str | None, Query(pattern=EXTERNAL_ID_PATTERN)] = None,
) -> TransactionOut:
    if (kind is IngestKind.refund) != (refund_id is not None):
        raise ApiError(422, "validation_error", "refund_id goes with kind=refund, and only there.")
    tx_id = f"{external_id}#{refund_id}" if refund_id else external_id
    async with engine.connect() as conn:
        row = await transactions.get_transaction(
            conn, org_id=principal.org_id, external_id=tx_id, kind=kind.value
        )
        past = (
            await transactions.history(conn, org_id=principal.org_id, external_id=external_id)
            if row is not None and kind is IngestKind.order
            else []
        )
    if row is None:
        if event_id is None:
            raise ApiError(404, "transaction_not_found", "No transaction with that external_id.")
        return TransactionOut(
            external_id=tx_id,
            kind=kind.value,
            status=TransactionStatus.pending,
            status_url=status_url(tx_id, event_id, kind.value),
        )
    return transaction_out(row, event_id, past)
