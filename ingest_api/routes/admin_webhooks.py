"""Webhook endpoints and their delivery log (``/v1/admin/webhooks``).

Deliveries are signed with the endpoint's secret: ``X-Punchline-Signature:
t=<unix ts>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``, and carry the stable
``X-Punchline-Event-Id``. The secret is generated unless given, and shown once.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from ingest_api.auth import AdminKey
from ingest_api.deps import EngineDep, SettingsDep
from ingest_api.errors import ApiError
from ingest_api.responses import JSONResponse
from ingest_api.services.admin_webhooks import check_url_policy
from punchline.db.repositories import webhook_deliveries, webhooks
from punchline.db.repositories.webhooks import EndpointRow
from schemas.customers import Pagination
from schemas.webhooks import (
    DeliveryOut,
    DeliveryPage,
    WebhookCreatedOut,
    WebhookCreateIn,
    WebhookList,
    WebhookOut,
)
from workers.webhooks.signing import new_secret

router = APIRouter(prefix="/v1/admin/webhooks", tags=["admin: webhooks"])

EndpointPath = Annotated[uuid.UUID, Path()]


def _not_found() -> ApiError:
    return ApiError(404, "webhook_not_found", "No webhook endpoint with that id in your org.")


def _out(row: EndpointRow) -> WebhookOut:
    return WebhookOut(**dataclasses.asdict(row))


@router.post("", status_code=201, response_model=WebhookCreatedOut)
async def create_webhook(
    body: WebhookCreateIn, principal: AdminKey, engine: EngineDep, settings: SettingsDep
) -> JSONResponse:
    check_url_policy(body.url, production=settings.environment == "production")
    secret = body.secret or new_secret()
    async with engine.begin() as conn:
        row = await webhooks.create(
            conn,
            org_id=principal.org_id,
            url=body.url,
            events=body.events,
            secret=secret,
            description=body.description,
        )
    out = WebhookCreatedOut(**dataclasses.asdict(row), secret=secret)
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
    )


@router.get("", response_model=WebhookList)
async def list_webhooks(principal: AdminKey, engine: EngineDep) -> WebhookList:
    async with engine.connect() as conn:
        rows = await webhooks.list_endpoints(conn, org_id=principal.org_id)
    return WebhookList(webhooks=[_out(r) for r in rows])


@router.get("/{endpoint_id}", response_model=WebhookOut)
async def get_webhook(
    endpoint_id: EndpointPath, principal: AdminKey, engine: EngineDep
) -> WebhookOut:
    async with engine.connect() as conn:
        row = await webhooks.get(conn, org_id=principal.org_id, endpoint_id=endpoint_id)
    if row is None:
        raise _not_found()
    return _out(row)


@router.delete("/{endpoint_id}", response_model=WebhookOut)
async def disable_webhook(
    endpoint_id: EndpointPath, principal: AdminKey, engine: EngineDep
) -> WebhookOut:
    """Stop deliveries; pending ones are cancelled and the log is kept."""
    async with engine.begin() as conn:
        row = await webhooks.disable(conn, org_id=principal.org_id, endpoint_id=endpoint_id)
    if row is None:
        raise _not_found()
    return _out(row)


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    endpoint_id: EndpointPath,
    principal: AdminKey,
    engine: EngineDep,
    status: Literal["pending", "succeeded", "failed", "cancelled"] | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    async with engine.connect() as conn:
        if await webhooks.get(conn, org_id=principal.org_id, endpoint_id=endpoint_id) is None:
            raise _not_found()
        rows, total = await webhook_deliveries.log_page(
            conn,
            org_id=principal.org_id,
            endpoint_id=endpoint_id,
            status=status,
            limit=limit,
            offset=(page - 1) * limit,
        )
    return DeliveryPage(
        deliveries=[DeliveryOut(**dataclasses.asdict(r)) for r in rows],
        pagination=Pagination(page=page, limit=limit, total=total),
    )
