"""``POST /v1/orders:batch``: up to 1,000 orders, each validated on its own, one produce.

The body is parsed as a list of raw items and each item is validated as an
:class:`~schemas.orders.OrderIn` separately, so one bad order is reported in its
own result and never rejects the others. All accepted orders go to the broker
in one produce; the answer (202) comes only once every one of them is
acknowledged. If the broker fails, the whole request is a 503 and no item is
accepted: the refused orders are fenced off (never applied later), and a client
retries the same batch. In the rare case where a worker had already applied some
of them before the edge gave up, those items are reported accepted, the rest
``rejected`` with ``broker_unavailable``, and the answer is a 202.

Duplicate ``external_id`` values inside one batch are all produced, each with
its own ``event_id``; the first applied wins and the others read ``duplicate``
at their ``status_url``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError

from ingest_api.auth import PosKey, Principal
from ingest_api.deps import ProducerDep
from ingest_api.lean_route import lean_route, pos_principal
from ingest_api.metrics import batch_items
from ingest_api.producer import BrokerUnavailable, EventProducer
from ingest_api.responses import JSONResponse
from ingest_api.routes.orders import order_event, status_url
from schemas.errors import ErrorOut
from schemas.events import IngestEvent
from schemas.orders import OrderIn

router = APIRouter(tags=["orders"])

MAX_BATCH = 1000
MAX_DETAILS = 50


class OrdersBatchIn(BaseModel):
    """The items are published as ``OrderIn`` but validated one by one by the route."""

    model_config = ConfigDict(extra="forbid")

    orders: Annotated[
        list[SkipValidation[OrderIn]],
        Field(min_length=1, max_length=MAX_BATCH, description="1 to 1,000 orders"),
    ]


class ErrorDetail(BaseModel):
    path: str
    message: str


class BatchItemAccepted(BaseModel):
    index: int
    external_id: str
    status: Literal["accepted"] = "accepted"
    event_id: str
    status_url: str


class BatchItemRejected(BaseModel):
    index: int
    external_id: str | None = None
    status: Literal["rejected"] = "rejected"
    error: Literal["validation_error", "broker_unavailable"] = "validation_error"
    details: list[ErrorDetail]


class OrdersBatchOut(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItemAccepted | BatchItemRejected]


def _details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "path": ".".join(str(p) for p in e.get("loc", ())) or "body",
            "message": str(e.get("msg", ""))[:300],
        }
        for e in exc.errors()[:MAX_DETAILS]
    ]


def _claimed_external_id(item: Any) -> str | None:
    """The external_id a rejected item claims, echoed only when it is a short string."""
    if isinstance(item, dict):
        value = item.get("external_id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None


async def post_orders_batch(
    batch: OrdersBatchIn,
    principal: PosKey,
    producer: ProducerDep,
) -> JSONResponse:
    return await accept_batch(batch.orders, principal, producer)


class _ValidBatch(BaseModel):
    """A batch whose every order is valid (the common case), validated in one pass."""

    model_config = ConfigDict(extra="forbid")

    orders: Annotated[list[OrderIn], Field(min_length=1, max_length=MAX_BATCH)]


async def _lean_post_orders_batch(request: Request, body: bytes) -> JSONResponse | None:
    """``post_orders_batch`` without FastAPI's request machinery (see ingest_api.lean_route).

    One pydantic-core pass over the raw body validates every order; when any item (or
    the envelope) is invalid, FastAPI's handler answers, item by item, as it always has.
    """
    try:
        batch = _ValidBatch.model_validate_json(body)
    except ValidationError:
        return None
    principal = await pos_principal(request)
    return await accept_batch(batch.orders, principal, request.app.state.producer)


async def accept_batch(
    items: Sequence[Any], principal: Principal, producer: EventProducer
) -> JSONResponse:
    """Validate each item on its own (a valid ``OrderIn`` passes as is), produce, answer."""
    accepted_at = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    events: list[IngestEvent] = []
    for index, item in enumerate(items):
        try:
            order = OrderIn.model_validate(item)
        except ValidationError as exc:
            results.append(
                {
                    "index": index,
                    "external_id": _claimed_external_id(item),
                    "status": "rejected",
                    "error": "validation_error",
                    "details": _details(exc),
                }
            )
            continue
        event = order_event(order, principal.org_id, accepted_at)
        events.append(event)
        results.append(
            {
                "index": index,
                "external_id": event.external_id,
                "status": "accepted",
                "event_id": str(event.event_id),
                "status_url": status_url(event.external_id, event.event_id),
            }
        )
    if events:
        try:
            await producer.send_events(events)
        except BrokerUnavailable as refused:
            if not refused.consumed:
                raise  # 503 for the whole batch: nothing accepted, nothing applied later
            results = [_refused_unless_consumed(r, refused.consumed) for r in results]
    accepted = sum(1 for r in results if r["status"] == "accepted")
    batch_items.labels("accepted").inc(accepted)
    batch_items.labels("rejected").inc(len(results) - accepted)
    body = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
    return JSONResponse(body, status_code=202)


router.add_api_route(
    "/v1/orders:batch",
    post_orders_batch,
    methods=["POST"],
    status_code=202,
    response_model=OrdersBatchOut,
    responses={
        422: {"model": ErrorOut, "description": "not a list of 1 to 1,000 items"},
        503: {"model": ErrorOut, "description": "broker unavailable; nothing was accepted"},
    },
    route_class_override=lean_route(_lean_post_orders_batch),
)


def _refused_unless_consumed(result: dict[str, Any], consumed: set[uuid.UUID]) -> dict[str, Any]:
    if result["status"] != "accepted" or uuid.UUID(result["event_id"]) in consumed:
        return result
    return {
        "index": result["index"],
        "external_id": result["external_id"],
        "status": "rejected",
        "error": "broker_unavailable",
        "details": [{"path": "body", "message": "The event log is unavailable; retry shortly."}],
    }


__all__ = ["MAX_BATCH", "router"]
