"""An org's API keys: create (the full key is shown once), list, revoke.

A revoked key stops at once on the process that revoked it and within
``api_key_cache_ttl_s`` on every other API process (their caches expire).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ingest_api.auth import AdminKey, KeyCache
from ingest_api.deps import EngineDep
from ingest_api.errors import ApiError
from ingest_api.responses import JSONResponse
from punchline.db.repositories import api_keys_admin, orgs
from schemas.admin import KeyCreatedOut, KeyCreateIn, KeyList, KeyOut

router = APIRouter(prefix="/v1/admin/keys", tags=["admin: keys"])


def _not_found() -> ApiError:
    return ApiError(404, "key_not_found", "No API key with that id in your org.")


@router.post("", status_code=201, response_model=KeyCreatedOut)
async def create_key(body: KeyCreateIn, principal: AdminKey, engine: EngineDep) -> JSONResponse:
    async with engine.begin() as conn:
        key_id, key = await orgs.create_api_key(
            conn,
            org_id=principal.org_id,
            name=body.name,
            scopes=sorted({s.value for s in body.scopes}),
            rate_limits=dict(body.rate_limits) if body.rate_limits else None,
        )
        info = await api_keys_admin.get(conn, org_id=principal.org_id, key_id=key_id)
    assert info is not None
    out = KeyCreatedOut(**dataclasses.asdict(info), key=key)
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
    )


@router.get("", response_model=KeyList)
async def list_keys(
    principal: AdminKey,
    engine: EngineDep,
    include_revoked: Annotated[bool, Query()] = True,
) -> KeyList:
    async with engine.connect() as conn:
        keys = await api_keys_admin.list_keys(
            conn, org_id=principal.org_id, include_revoked=include_revoked
        )
    return KeyList(keys=[KeyOut(**dataclasses.asdict(k)) for k in keys])


@router.delete("/{key_id}", response_model=KeyOut)
async def revoke_key(
    key_id: Annotated[uuid.UUID, Path()], principal: AdminKey, engine: EngineDep, request: Request
) -> KeyOut:
    async with engine.begin() as conn:
        info = await api_keys_admin.revoke(conn, org_id=principal.org_id, key_id=key_id)
    if info is None:
        raise _not_found()
    cache: KeyCache = request.app.state.key_cache
    cache.forget()
    return KeyOut(**dataclasses.asdict(info))
