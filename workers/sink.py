"""Write step: one batch, one Postgres transaction, offsets stored last.

decode → gate by stored offsets → drop events the edge refused (503) → load
state → plan (pure rules) → write → dead-letter → save offsets → commit. The
caller retries the whole call on a transient failure; nothing here is visible
until the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import rules
from punchline.db.repositories import batches, customers, orgs, refusals
from punchline.rules_input import order_to_rules
from schemas.events import REVERSAL_KINDS, DeadLetter, IngestEvent, IngestKind
from schemas.orders import OrderIn
from workers.catalogue import enrich, skus_to_look_up
from workers.messages import Poison, Record, decode
from workers.offsets import gate
from workers.plan import BatchInputs, BatchPlan, local_day, plan_batch, tx_key
from workers.reversals import OriginalOrder

DeadLetterSink = Callable[[Sequence[DeadLetter]], Awaitable[None]]
RuleSetSource = Callable[
    [AsyncConnection, set[uuid.UUID]], Awaitable[dict[uuid.UUID, rules.CompiledRuleSet]]
]


VersionSource = Callable[
    [AsyncConnection, set[tuple[uuid.UUID, int]]],
    Awaitable[dict[tuple[uuid.UUID, int], rules.CompiledRuleSet]],
]


class ConcurrentWrite(Exception):
    """Another writer inserted one of our keys mid-batch; the batch is retried."""


@dataclass(slots=True)
class BatchOutcome:
    applied: int = 0
    rejected: int = 0
    duplicates: int = 0
    redelivered: int = 0
    refused: int = 0  # answered 503 at the edge, delivered anyway: never applied
    dead_lettered: int = 0
    seek_to: dict[int, int] = field(default_factory=dict)
    applied_events: list[IngestEvent] = field(default_factory=list)


class BatchWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        group: str,
        rule_sets: RuleSetSource,
        dead_letters: DeadLetterSink,
        versions: VersionSource,
    ) -> None:
        self._engine = engine
        self._group = group
        self._rule_sets = rule_sets
        self._versions = versions
        self._dead_letters = dead_letters

    async def write(
        self, records: Sequence[Record], *, earliest: dict[int, int] | None = None
    ) -> BatchOutcome:
        outcome = BatchOutcome()
        if not records:
            return outcome
        topic = records[0].topic
        async with self._engine.begin() as conn:
            await refusals.hold_fence_shared(conn)
            stored = await batches.lock_offsets(
                conn, group=self._group, topic=topic, partitions=[r.partition for r in records]
            )
            gated = gate(records, stored, earliest=earliest)
            outcome.redelivered = gated.redelivered
            outcome.seek_to = gated.refused
            decoded = [decode(r) for r in gated.fresh]
            events = [d for d in decoded if isinstance(d, IngestEvent)]
            poison = [d for d in decoded if isinstance(d, Poison)]

            known_orgs = await orgs.load_orgs(conn, sorted({e.org_id for e in events}, key=str))
            by_record = dict(zip(gated.fresh, decoded, strict=True))
            for record, item in by_record.items():
                if isinstance(item, IngestEvent) and item.org_id not in known_orgs:
                    poison.append(Poison(record, f"unknown org {item.org_id}"))
            events = [e for e in events if e.org_id in known_orgs]
            refused = await refusals.refused_among(conn, [e.event_id for e in events])
            if refused:
                events = [e for e in events if e.event_id not in refused]
                outcome.refused = len(refused)

            if any(e.order is not None for e in events):
                catalogue = await batches.load_catalogue(conn, skus_to_look_up(events))
                events = [enrich(e, catalogue) for e in events]
            plan = await self._plan(conn, events, known_orgs)
            await self._write_plan(conn, plan)
            if poison:
                await self._dead_letters([p.dead_letter() for p in poison])
            await batches.save_offsets(
                conn, group=self._group, topic=topic, next_offsets=gated.next_offsets
            )
            if plan.transactions:
                await batches.notify_applied(conn)
        outcome.applied = plan.applied
        outcome.rejected = plan.rejected
        outcome.duplicates = sum(plan.duplicates.values())
        outcome.dead_lettered = len(poison)
        outcome.applied_events = events
        return outcome

    async def _plan(
        self,
        conn: AsyncConnection,
        events: list[IngestEvent],
        known_orgs: dict[uuid.UUID, orgs.OrgRow],
    ) -> BatchPlan:
        existing = await batches.existing_transactions(conn, list({tx_key(e) for e in events}))
        earns = [e for e in events if e.kind not in REVERSAL_KINDS]
        reversals = [e for e in events if e.kind in REVERSAL_KINDS]
        refs = {(e.org_id, e.customer.type.value, e.customer.value) for e in earns}
        found = await customers.resolve_refs(conn, refs)
        stored = await batches.load_orders(conn, [(e.org_id, e.external_id) for e in reversals])
        parked_rows = await batches.load_parked(
            conn, [(e.org_id, e.external_id) for e in earns if e.kind is IngestKind.order]
        )
        customer_ids = {c.id for c in found.values()} | {o.customer_id for o in stored.values()}
        wallets = await batches.load_wallets(conn, sorted(customer_ids))
        day_keys = []
        for e in earns:
            customer = found.get((e.org_id, e.customer.type.value, e.customer.value))
            if customer is not None:
                day_keys.append((customer.id, local_day(e, known_orgs[e.org_id].timezone)))
        daily = await batches.load_daily_points(conn, day_keys)
        compiled = await self._rule_sets(conn, {e.org_id for e in events})
        versions = await self._versions(
            conn,
            {(o.org_id, o.rule_set_version) for o in stored.values()}
            | {(e.org_id, compiled[e.org_id].version) for e in events},
        )
        inputs = BatchInputs(
            orgs=known_orgs,
            customers=found,
            wallets=wallets,
            existing=existing,
            daily=daily,
            rule_sets=compiled.__getitem__,
            rule_version=lambda org, version: versions[(org, version)],
            originals={
                key: _original(o, known_orgs[o.org_id].timezone) for key, o in stored.items()
            },
            parked={
                key: [IngestEvent.model_validate(p) for p in payloads]
                for key, payloads in parked_rows.items()
            },
            lifetime=await batches.load_progress(conn, sorted(customer_ids)),
        )
        if reversals or parked_rows:
            inputs.coupon_status = await batches.load_coupon_statuses(conn, sorted(customer_ids))
        return plan_batch(events, inputs)

    async def _write_plan(self, conn: AsyncConnection, plan: BatchPlan) -> None:
        ids = await batches.insert_transactions(conn, plan.transactions)
        if len(ids) != len(plan.transactions):
            raise ConcurrentWrite(f"{len(plan.transactions) - len(ids)} keys inserted concurrently")
        effects = plan.effects
        ids.update(await batches.resolve_parked(conn, effects.resolved, effects.unparked))
        await batches.park_events(
            conn,
            [
                (e.org_id, e.external_id, e.event_id, e.kind.value, e.model_dump_json())
                for e, _ in effects.parked
            ],
        )
        await batches.insert_ledger(
            conn,
            [entry for _, entry in plan.ledger],
            [ids.get(key) for key, _ in plan.ledger],
        )
        await batches.apply_wallet_deltas(conn, list(plan.wallet_deltas.values()))
        await batches.update_customers(conn, list(plan.customer_progress.values()))
        await batches.insert_stamp_coupons(
            conn, [replace(coupon, transaction_id=ids[key]) for key, coupon in plan.coupons]
        )
        await batches.update_reversed_orders(conn, effects.order_updates)
        await batches.void_coupons(conn, effects.voids)
        await batches.count_duplicates(conn, dict(plan.duplicates))
        await batches.add_daily_points(conn, plan.daily)
        await batches.insert_outbox(conn, plan.outbox)


def _original(stored: batches.StoredOrder, timezone: str) -> OriginalOrder:
    order = OrderIn.model_validate(stored.order_body)
    return OriginalOrder(
        org_id=stored.org_id,
        external_id=stored.external_id,
        customer_id=stored.customer_id,
        order=order_to_rules(
            lines=order.lines,
            occurred_at=order.occurred_at,
            timezone=timezone,
            amount_cents=order.amount_cents,
            store_id=order.store_id,
        ),
        decision=rules.decision_from_dict(stored.decision),
        reversed=rules.reversal_from_dict(stored.reversed) if stored.reversed else None,
        rule_set_version=stored.rule_set_version,
    )
