"""Merchant rules: the active set, its versions, and a dry-run simulator."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from pydantic import BaseModel

import rules
from ingest_api.auth import AdminKey
from ingest_api.deps import EngineDep
from ingest_api.errors import ApiError
from punchline.db.repositories import batches, customers, orgs, rule_sets
from punchline.rules_input import order_to_rules, stamps_to_rules
from schemas.rules import RuleSet
from schemas.simulate import SimulateIn
from workers.rulesets import DEFAULT_VERSION

router = APIRouter(prefix="/v1/admin", tags=["admin: rules"])


class RuleSetOut(BaseModel):
    version: int
    rules: dict[str, Any]
    created_at: datetime | None = None
    created_by: str | None = None


class RuleSetVersionOut(BaseModel):
    version: int
    created_at: datetime
    created_by: str | None


def _json(rule_set: RuleSet) -> dict[str, Any]:
    return rule_set.model_dump(mode="json", exclude_none=True)


@router.get("/rules", response_model=RuleSetOut)
async def get_rules(principal: AdminKey, engine: EngineDep) -> RuleSetOut:
    async with engine.connect() as conn:
        stored = await rule_sets.active(conn, principal.org_id)
    if stored is None:
        return RuleSetOut(version=DEFAULT_VERSION, rules=_json(RuleSet.default()))
    return RuleSetOut(
        version=stored.version,
        rules=stored.body,
        created_at=stored.created_at,
        created_by=stored.created_by,
    )


@router.put("/rules", response_model=RuleSetOut)
async def put_rules(body: RuleSet, principal: AdminKey, engine: EngineDep) -> RuleSetOut:
    # Compiling proves the set is usable before anything is stored.
    rules.compile_rule_set(body, 1)
    async with engine.begin() as conn:
        stored = await rule_sets.insert_version(
            conn,
            org_id=principal.org_id,
            body=body.model_dump_json(exclude_none=True),
            created_by=f"key:{principal.key_id}",
        )
    return RuleSetOut(
        version=stored.version,
        rules=stored.body,
        created_at=stored.created_at,
        created_by=stored.created_by,
    )


@router.get("/rules/versions", response_model=list[RuleSetVersionOut])
async def list_versions(principal: AdminKey, engine: EngineDep) -> list[RuleSetVersionOut]:
    async with engine.connect() as conn:
        stored = await rule_sets.versions(conn, principal.org_id)
    return [
        RuleSetVersionOut(version=s.version, created_at=s.created_at, created_by=s.created_by)
        for s in stored
    ]


@router.post("/rules:simulate")
async def simulate(body: SimulateIn, principal: AdminKey, engine: EngineDep) -> dict[str, Any]:
    async with engine.connect() as conn:
        org = (await orgs.load_orgs(conn, [principal.org_id]))[principal.org_id]
        if body.rules is not None:
            rule_set, version = body.rules, -1
        else:
            stored = await rule_sets.active(conn, principal.org_id)
            rule_set = RuleSet.model_validate(stored.body) if stored else RuleSet.default()
            version = stored.version if stored else DEFAULT_VERSION
        state = await _customer_state(conn, body, org.id, org.timezone)
    compiled = rules.compile_rule_set(rule_set, version)
    order = body.order
    if order.stamps is not None:
        rules_order = stamps_to_rules(
            stamps=order.stamps,
            occurred_at=order.occurred_at,
            timezone=org.timezone,
            store_id=order.store_id,
        )
    elif order.lines or order.amount_cents is not None:
        rules_order = order_to_rules(
            lines=order.lines,
            occurred_at=order.occurred_at,
            timezone=org.timezone,
            amount_cents=order.amount_cents,
            store_id=order.store_id,
        )
    else:
        raise ApiError(422, "validation_error", "Give lines, amount_cents or stamps.")
    try:
        decision = rules.evaluate(rules_order, state, compiled)
    except rules.RulesError as exc:
        raise ApiError(422, exc.code, str(exc)) from exc
    return {
        "rule_set_version": version,
        "draft": body.rules is not None,
        **rules.decision_to_dict(decision),
    }


async def _customer_state(
    conn: Any, body: SimulateIn, org_id: Any, timezone: str
) -> rules.CustomerState:
    if body.customer_code is None:
        hypo = body.customer
        if hypo is None:
            return rules.CustomerState()
        return rules.CustomerState(
            tier=hypo.tier,
            lifetime_points=hypo.lifetime_points,
            stamps=dict(hypo.stamps),
            points_today=hypo.points_today,
        )
    found = await customers.resolve_refs(conn, [(org_id, "code", body.customer_code.upper())])
    customer = next(iter(found.values()), None)
    if customer is None:
        raise ApiError(404, "customer_not_found", "No customer with that code in your org.")
    wallets = (await batches.load_wallets(conn, [customer.id])).get(customer.id, {})
    day = body.order.occurred_at.astimezone(ZoneInfo(timezone)).date()
    today = (await batches.load_daily_points(conn, [(customer.id, day)])).get((customer.id, day), 0)
    cards = {a[7:]: w for a, w in wallets.items() if a.startswith("stamps:")}
    return rules.CustomerState(
        tier=customer.tier,
        lifetime_points=customer.lifetime_points,
        stamps={c: w.balance for c, w in cards.items()},
        card_fills={c: w.fills for c, w in cards.items()},
        points_today=today,
    )
