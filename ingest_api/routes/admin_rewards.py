"""``/v1/admin/rewards``: create, list and change the rewards customers buy with points."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from ingest_api.auth import AdminKey
from ingest_api.deps import EngineDep
from ingest_api.errors import ApiError
from punchline.db.repositories import rewards
from punchline.db.repositories.rewards import RewardRow
from schemas.admin_rewards import AdminRewardOut, RewardIn, RewardPatch, check_value
from schemas.coupons import RewardKind

router = APIRouter(prefix="/v1/admin/rewards", tags=["admin: rewards"])


def _out(row: RewardRow) -> AdminRewardOut:
    return AdminRewardOut(
        id=str(row.id),
        name=row.name,
        description=row.description,
        points_cost=row.points_cost,
        type=row.type,
        value=row.value,
        required_tier=row.required_tier,
        icon=row.icon,
        validity_days=row.validity_days,
        active=row.active,
    )


@router.post("", status_code=201, response_model=AdminRewardOut)
async def create_reward(body: RewardIn, principal: AdminKey, engine: EngineDep) -> AdminRewardOut:
    async with engine.begin() as conn:
        row = await rewards.create(conn, org_id=principal.org_id, **body.model_dump(mode="json"))
    return _out(row)


@router.get("", response_model=list[AdminRewardOut])
async def list_rewards(principal: AdminKey, engine: EngineDep) -> list[AdminRewardOut]:
    async with engine.connect() as conn:
        return [_out(row) for row in await rewards.list_all(conn, principal.org_id)]


@router.patch("/{reward_id}", response_model=AdminRewardOut)
async def change_reward(
    reward_id: uuid.UUID, body: RewardPatch, principal: AdminKey, engine: EngineDep
) -> AdminRewardOut:
    changes = body.model_dump(exclude_unset=True)
    async with engine.begin() as conn:
        current = await rewards.update(
            conn, org_id=principal.org_id, reward_id=reward_id, changes={}
        )
        if current is None:
            raise ApiError(404, "reward_not_found", "No reward with that id in your org.")
        try:
            check_value(RewardKind(current.type), changes.get("value"))
        except ValueError as exc:
            raise ApiError(422, "validation_error", str(exc)) from exc
        row = await rewards.update(
            conn, org_id=principal.org_id, reward_id=reward_id, changes=changes
        )
    assert row is not None
    return _out(row)
