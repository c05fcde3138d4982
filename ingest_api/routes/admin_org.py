"""The org's own settings: name, time zone, currency, verification preset,
negative-balance policy and subscription status."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter

from ingest_api.auth import AdminKey
from ingest_api.deps import EngineDep
from ingest_api.errors import INVALID_KEY, ApiError
from punchline.db.repositories import org_settings
from schemas.admin import OrgOut, OrgPatchIn

router = APIRouter(prefix="/v1/admin/org", tags=["admin: org"])


@router.get("", response_model=OrgOut)
async def get_org(principal: AdminKey, engine: EngineDep) -> OrgOut:
    async with engine.connect() as conn:
        found = await org_settings.get(conn, principal.org_id)
    if found is None:  # the key outlived its org
        raise ApiError(401, INVALID_KEY)
    return OrgOut(**dataclasses.asdict(found))


@router.patch("", response_model=OrgOut)
async def patch_org(body: OrgPatchIn, principal: AdminKey, engine: EngineDep) -> OrgOut:
    async with engine.begin() as conn:
        found = await org_settings.update(conn, principal.org_id, body.changes())
    if found is None:
        raise ApiError(401, INVALID_KEY)
    return OrgOut(**dataclasses.asdict(found))
