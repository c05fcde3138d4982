"""Transform step: decoded events + loaded state → the rows of one batch.

Pure: no I/O. Events of one customer are evaluated in stream order, each on
the state the previous one left, so a batch gives the same result as applying
its events one by one. Orders and earns go through ``rules.evaluate``;
cancel, delete and refund through ``workers.reversals``.
"""

from __future__ import annotations

import secrets
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import orjson

import rules
from punchline.db.repositories.batches import (
    CustomerProgress,
    NewCoupon,
    NewLedgerEntry,
    NewOutboxEvent,
    NewTransaction,
    TxKey,
    WalletDelta,
    WalletState,
)
from punchline.db.repositories.customers import CustomerRow
from punchline.db.repositories.orgs import OrgRow
from punchline.rules_input import earn_to_rules, order_to_rules
from schemas.events import REVERSAL_KINDS, IngestEvent, IngestKind
from workers.reversals import LiveState, OriginalOrder, ReversalEffects, plan_reversal

POINTS = "points"
OrderKey = tuple[uuid.UUID, str]


def stamp_asset(card_id: str) -> str:
    return f"stamps:{card_id}"


def tx_key(event: IngestEvent) -> TxKey:
    return (event.org_id, event.tx_external_id, event.kind.value)


@dataclass(slots=True)
class BatchInputs:
    """Everything the sink loaded for one batch."""

    orgs: dict[uuid.UUID, OrgRow]
    customers: dict[tuple[uuid.UUID, str, str], CustomerRow]
    wallets: dict[int, dict[str, WalletState]]
    existing: dict[TxKey, uuid.UUID]
    daily: dict[tuple[int, date], int]
    rule_sets: Callable[[uuid.UUID], rules.CompiledRuleSet]
    rule_version: Callable[[uuid.UUID, int], rules.CompiledRuleSet]
    originals: dict[OrderKey, OriginalOrder] = field(default_factory=dict)
    parked: dict[OrderKey, list[IngestEvent]] = field(default_factory=dict)
    coupon_status: dict[tuple[int, str, int], str] = field(default_factory=dict)
    lifetime: dict[int, tuple[int, str | None]] = field(default_factory=dict)


@dataclass(slots=True)
class BatchPlan:
    transactions: list[NewTransaction] = field(default_factory=list)
    ledger: list[tuple[TxKey, NewLedgerEntry]] = field(default_factory=list)
    coupons: list[tuple[TxKey, NewCoupon]] = field(default_factory=list)
    wallet_deltas: dict[tuple[int, str], WalletDelta] = field(default_factory=dict)
    customer_progress: dict[int, CustomerProgress] = field(default_factory=dict)
    duplicates: Counter[TxKey] = field(default_factory=Counter)
    daily: dict[tuple[int, date], int] = field(default_factory=dict)
    effects: ReversalEffects = field(default_factory=ReversalEffects)
    orders: dict[OrderKey, OriginalOrder] = field(default_factory=dict)
    outbox: list[NewOutboxEvent] = field(default_factory=list)
    applied: int = 0
    rejected: int = 0

    def ledger_entry(self, key: TxKey, entry: NewLedgerEntry) -> None:
        self.ledger.append((key, entry))

    def event(
        self, org_id: uuid.UUID, customer_id: int | None, event_type: str, **payload: object
    ) -> None:
        """A domain event for the outbox, written in this batch's transaction."""
        body = {"org_id": str(org_id), "customer_id": customer_id, **payload}
        self.outbox.append(NewOutboxEvent(org_id, customer_id, event_type, _dumps(body)))

    def wallet_delta(self, delta: WalletDelta) -> None:
        key = (delta.customer_id, delta.asset)
        prev = self.wallet_deltas.get(key)
        if prev is not None:
            delta = WalletDelta(
                prev.customer_id,
                prev.org_id,
                prev.asset,
                prev.delta + delta.delta,
                prev.fills + delta.fills,
            )
        self.wallet_deltas[key] = delta

    def progress(self, customer_id: int, lifetime_delta: int, tier: str | None) -> None:
        prev = self.customer_progress.get(customer_id)
        total = (prev.lifetime_delta if prev else 0) + lifetime_delta
        self.customer_progress[customer_id] = CustomerProgress(customer_id, total, tier)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def occurred_at(event: IngestEvent) -> datetime:
    if event.order is not None:
        return event.order.occurred_at
    if event.earn is not None:
        return event.earn.occurred_at
    return event.accepted_at


def local_day(event: IngestEvent, timezone: str) -> date:
    """The order's calendar day where it happened: the per-day cap counts by it."""
    return occurred_at(event).astimezone(_zone(timezone)).date()


def to_rules_input(event: IngestEvent, timezone: str) -> rules.Order:
    if event.kind is IngestKind.earn:
        assert event.earn is not None
        return earn_to_rules(event.earn, timezone)
    assert event.order is not None
    order = event.order
    return order_to_rules(
        lines=order.lines,
        occurred_at=order.occurred_at,
        timezone=timezone,
        amount_cents=order.amount_cents,
        store_id=order.store_id,
    )


def plan_batch(
    events: Sequence[IngestEvent],
    inputs: BatchInputs,
    *,
    new_token: Callable[[], str] = lambda: secrets.token_urlsafe(18),
) -> BatchPlan:
    plan = BatchPlan()
    seen: dict[TxKey, uuid.UUID] = dict(inputs.existing)
    live: dict[int, LiveState] = {}

    def state_for(customer_id: int) -> LiveState:
        state = live.get(customer_id)
        if state is None:
            owned = inputs.wallets.get(customer_id, {})
            lifetime, tier = inputs.lifetime.get(customer_id, (0, None))
            points = owned.get(POINTS)
            state = live[customer_id] = LiveState(
                tier=tier,
                lifetime=lifetime,
                points=points.balance if points else 0,
                stamps={a[7:]: w.balance for a, w in owned.items() if a.startswith("stamps:")},
                fills={a[7:]: w.fills for a, w in owned.items() if a.startswith("stamps:")},
            )
        return state

    def coupon_status(customer_id: int, card_id: str, fill: int) -> str:
        return inputs.coupon_status.get((customer_id, card_id, fill), "issued")

    def reverse(event: IngestEvent, *, was_parked: bool) -> None:
        order_key = (event.org_id, event.external_id)
        plan_reversal(
            plan,
            event,
            original=plan.orders.get(order_key) or inputs.originals.get(order_key),
            org=inputs.orgs[event.org_id],
            state_for=state_for,
            rule_version=inputs.rule_version,
            coupon_status=coupon_status,
            was_parked=was_parked,
        )

    for event in events:
        key = tx_key(event)
        first = seen.get(key)
        if first is not None:
            if first != event.event_id:
                plan.duplicates[key] += 1
            continue
        seen[key] = event.event_id
        if event.kind in REVERSAL_KINDS:
            reverse(event, was_parked=False)
            continue
        org = inputs.orgs[event.org_id]
        ref = (event.org_id, event.customer.type.value, event.customer.value)
        customer = inputs.customers.get(ref)
        if customer is None:
            _reject(plan, event, "customer_not_found")
            continue
        if customer.status != "ACTIVE":
            _reject(plan, event, "customer_blocked", customer_id=customer.id)
            continue
        inputs.lifetime.setdefault(customer.id, (customer.lifetime_points, customer.tier))
        state = state_for(customer.id)
        day_key = (customer.id, local_day(event, org.timezone))
        today = inputs.daily.get(day_key, 0) + plan.daily.get(day_key, 0)
        order = to_rules_input(event, org.timezone)
        try:
            decision = rules.evaluate(
                order,
                rules.CustomerState(
                    tier=state.tier,
                    lifetime_points=state.lifetime,
                    stamps=dict(state.stamps),
                    card_fills=dict(state.fills),
                    points_today=today,
                ),
                inputs.rule_sets(event.org_id),
            )
        except rules.RulesError as exc:
            _reject(plan, event, exc.code, customer_id=customer.id)
            continue
        if decision.status != "applied":
            _reject(plan, event, decision.error_code or "rejected", customer_id=customer.id)
            continue
        _apply(plan, event, customer, decision, state, new_token)
        if decision.points:
            plan.daily[day_key] = plan.daily.get(day_key, 0) + decision.points
        if event.kind is IngestKind.order:
            order_key = (event.org_id, event.external_id)
            plan.orders[order_key] = OriginalOrder(
                org_id=event.org_id,
                external_id=event.external_id,
                customer_id=customer.id,
                order=order,
                decision=decision,
                reversed=None,
                rule_set_version=decision.rule_set_version,
            )
            for parked in inputs.parked.get(order_key, ()):
                reverse(parked, was_parked=True)
    return plan


def _row(
    event: IngestEvent,
    *,
    customer_id: int | None,
    status: str,
    error_code: str | None = None,
    decision: rules.Decision | None = None,
    coupons: list[dict[str, object]] | None = None,
) -> NewTransaction:
    body = event.order if event.order is not None else event.earn
    return NewTransaction(
        org_id=event.org_id,
        external_id=event.tx_external_id,
        kind=event.kind.value,
        event_id=event.event_id,
        customer_id=customer_id,
        status=status,
        error_code=error_code,
        points=decision.points if decision else 0,
        stamps_json=_dumps(dict(decision.stamps)) if decision else "{}",
        coupons_json=_dumps(coupons or []),
        rules_applied_json=_dumps(
            [
                {"rule_id": r.rule_id, "label": r.label, "points": r.points, "stamps": r.stamps}
                for r in decision.rules_applied
            ]
            if decision
            else []
        ),
        decision_json=_dumps(rules.decision_to_dict(decision)) if decision else None,
        order_json=body.model_dump_json() if body is not None else None,
        rule_set_version=decision.rule_set_version if decision else None,
        occurred_at=occurred_at(event),
        accepted_at=event.accepted_at,
        stream_key=event.key.decode(),
    )


def _reject(
    plan: BatchPlan, event: IngestEvent, code: str, *, customer_id: int | None = None
) -> None:
    plan.rejected += 1
    plan.transactions.append(
        _row(event, customer_id=customer_id, status="rejected", error_code=code)
    )


def _apply(
    plan: BatchPlan,
    event: IngestEvent,
    customer: CustomerRow,
    decision: rules.Decision,
    state: LiveState,
    new_token: Callable[[], str],
) -> None:
    key = tx_key(event)
    version = decision.rule_set_version
    coupons: list[dict[str, object]] = []
    fills_by_card: dict[str, int] = defaultdict(int)
    for grant in decision.coupons:
        coupon_id = uuid.uuid4()
        token = new_token()
        fills_by_card[grant.card_id] += 1
        coupons.append(
            {
                "id": str(coupon_id),
                "name": grant.reward_name,
                "qr_token": token,
                "card_id": grant.card_id,
                "fill_number": grant.fill_number,
                "reward_type": grant.reward_type,
                "reward_value": grant.reward_value,
                "validity_days": grant.validity_days,
            }
        )
        plan.coupons.append(
            (
                key,
                NewCoupon(
                    id=coupon_id,
                    org_id=event.org_id,
                    customer_id=customer.id,
                    token=token,
                    card_id=grant.card_id,
                    fill_number=grant.fill_number,
                    transaction_id=0,
                    reward_name=grant.reward_name,
                    reward_type=grant.reward_type,
                    reward_value=grant.reward_value,
                    validity_days=grant.validity_days,
                ),
            )
        )
    plan.applied += 1
    plan.transactions.append(
        _row(event, customer_id=customer.id, status="applied", decision=decision, coupons=coupons)
    )

    def ledger(asset: str, delta: int, entry_kind: str) -> None:
        plan.ledger_entry(
            key,
            NewLedgerEntry(
                org_id=event.org_id,
                customer_id=customer.id,
                asset=asset,
                delta=delta,
                kind=entry_kind,
                external_id=event.tx_external_id,
                transaction_id=None,
                rule_set_version=version,
            ),
        )
        plan.wallet_delta(WalletDelta(customer.id, event.org_id, asset, delta))

    # The ledger kind is the event's: an order and an earn may share an external_id.
    kind = event.kind.value
    common = {"customer_code": customer.code, "external_id": event.tx_external_id}
    if decision.points:
        ledger(POINTS, decision.points, kind)
        state.points += decision.points
        plan.event(
            event.org_id,
            customer.id,
            "points.earned",
            **common,
            points=decision.points,
            balance=state.points,
            rule_set_version=version,
        )
    for coupon in coupons:
        plan.event(event.org_id, customer.id, "coupon.issued", **common, coupon=coupon)
    for card_id, added in decision.stamps.items():
        before = state.stamps.get(card_id, 0)
        after = decision.card_balances.get(card_id, before + added)
        if added:
            ledger(stamp_asset(card_id), added, kind)
        consumed = before + added - after
        if consumed:
            ledger(stamp_asset(card_id), -consumed, f"{kind}_card_fill")
        if fills_by_card.get(card_id):
            plan.wallet_delta(
                WalletDelta(
                    customer.id, event.org_id, stamp_asset(card_id), 0, fills_by_card[card_id]
                )
            )
        state.stamps[card_id] = after
        state.fills[card_id] = state.fills.get(card_id, 0) + fills_by_card.get(card_id, 0)
        if added:
            plan.event(
                event.org_id,
                customer.id,
                "stamps.earned",
                **common,
                card_id=card_id,
                stamps=added,
                balance=after,
            )
    if decision.tier_changed:
        plan.event(
            event.org_id, customer.id, "tier.changed", **common, old=state.tier, new=decision.tier
        )
    state.lifetime += decision.points
    state.tier = decision.tier
    plan.progress(customer.id, decision.points, decision.tier)
