"""Transform step for cancel, delete and refund: take back what an order earned.

Pure: the sink loads the original order, the customer's state and the coupon
statuses; this module decides. A reversal whose order has not been seen yet
is parked, and applied right after the order when it arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

import rules
from punchline.db.repositories.batches import NewLedgerEntry, NewTransaction, TxKey, WalletDelta
from punchline.db.repositories.orgs import OrgRow
from schemas.events import IngestEvent, IngestKind, RefundLineIn

POINTS = "points"


@dataclass(slots=True)
class OriginalOrder:
    """An applied order as a reversal needs it; ``reversed`` accumulates over the batch."""

    org_id: uuid.UUID
    external_id: str
    customer_id: int
    order: rules.Order
    decision: rules.Decision
    reversed: rules.Reversal | None
    rule_set_version: int


@dataclass(slots=True)
class LiveState:
    """A customer's balances as they evolve through the batch."""

    tier: str | None
    lifetime: int
    points: int
    stamps: dict[str, int]
    fills: dict[str, int]


@dataclass(slots=True)
class ReversalEffects:
    """What the reversals of one batch write, besides ledger, wallets and customers."""

    order_updates: dict[tuple[uuid.UUID, str], tuple[str, str]] = field(default_factory=dict)
    voids: list[tuple[int, str, int]] = field(default_factory=list)
    parked: list[tuple[IngestEvent, str]] = field(default_factory=list)
    unparked: list[uuid.UUID] = field(default_factory=list)
    resolved: list[NewTransaction] = field(default_factory=list)


class Sink:
    """The slice of the batch plan a reversal writes to (implemented by ``BatchPlan``)."""

    effects: ReversalEffects
    transactions: list[NewTransaction]
    applied: int
    rejected: int

    def ledger_entry(self, key: TxKey, entry: NewLedgerEntry) -> None: ...
    def event(
        self, org_id: uuid.UUID, customer_id: int | None, event_type: str, **payload: object
    ) -> None: ...
    def wallet_delta(self, delta: WalletDelta) -> None: ...
    def progress(self, customer_id: int, lifetime_delta: int, tier: str | None) -> None: ...


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def refund_lines(
    lines: tuple[RefundLineIn, ...], order: rules.Order
) -> tuple[rules.RefundLine, ...]:
    """Map refund lines named by sku onto the order's line refs, in order of the lines."""
    refs: list[rules.RefundLine] = []
    for line in lines:
        if line.line_ref is not None:
            refs.append(rules.RefundLine(line_ref=line.line_ref, quantity=line.quantity))
            continue
        matching = [ol for ol in order.lines if ol.sku == line.sku]
        if not matching:
            raise rules.RefundExceedsOrder(f"sku:{line.sku}", line.quantity, 0)
        left = line.quantity
        for ol in matching:
            take = min(left, ol.quantity) if ol is not matching[-1] else left
            if take:
                refs.append(rules.RefundLine(line_ref=ol.line_ref, quantity=take))
            left -= take
            if not left:
                break
    return tuple(refs)


def reversal_row(
    event: IngestEvent,
    *,
    customer_id: int | None,
    status: str,
    error_code: str | None = None,
    points: int = 0,
    stamps: dict[str, int] | None = None,
    detail: dict[str, Any] | None = None,
    version: int | None = None,
) -> NewTransaction:
    return NewTransaction(
        org_id=event.org_id,
        external_id=event.tx_external_id,
        kind=event.kind.value,
        event_id=event.event_id,
        customer_id=customer_id,
        status=status,
        error_code=error_code,
        points=points,
        stamps_json=_dumps(stamps or {}),
        coupons_json="[]",
        rules_applied_json="[]",
        decision_json=_dumps(detail) if detail is not None else None,
        order_json=event.reversal.model_dump_json() if event.reversal else None,
        rule_set_version=version,
        occurred_at=None,
        accepted_at=event.accepted_at,
        parent_external_id=event.external_id,
        stream_key=event.key.decode(),
    )


def plan_reversal(
    plan: Sink,
    event: IngestEvent,
    *,
    original: OriginalOrder | None,
    org: OrgRow,
    state_for: Callable[[int], LiveState],
    rule_version: Callable[[uuid.UUID, int], rules.CompiledRuleSet],
    coupon_status: Callable[[int, str, int], str],
    was_parked: bool = False,
) -> None:
    def record(row: NewTransaction) -> None:
        if was_parked:
            plan.effects.resolved.append(row)
            plan.effects.unparked.append(event.event_id)
        else:
            plan.transactions.append(row)

    if original is None:
        plan.effects.parked.append((event, event.tx_external_id))
        plan.transactions.append(reversal_row(event, customer_id=None, status="parked"))
        return
    state = state_for(original.customer_id)
    compiled = rule_version(original.org_id, original.rule_set_version)
    assert event.reversal is not None
    try:
        refund = (
            refund_lines(event.reversal.lines, original.order)
            if event.kind is IngestKind.refund and event.reversal.lines
            else None
        )
        step = rules.reverse(
            original.order,
            original.decision,
            refund,
            original.reversed,
            compiled,
            rules.CustomerState(
                tier=state.tier,
                lifetime_points=state.lifetime,
                stamps=dict(state.stamps),
                card_fills=dict(state.fills),
            ),
        )
    except rules.RulesError as exc:
        plan.rejected += 1
        code = "refund_exceeds_order" if isinstance(exc, rules.RefundExceedsOrder) else exc.code
        record(
            reversal_row(
                event, customer_id=original.customer_id, status="rejected", error_code=code
            )
        )
        return

    key: TxKey = (event.org_id, event.tx_external_id, event.kind.value)
    balances = dict(step.card_balances)
    for card_id, fill in step.coupons_to_void:
        if coupon_status(original.customer_id, card_id, fill) == "issued":
            plan.effects.voids.append((original.customer_id, card_id, fill))
        else:  # a used coupon stays; its stamps come off the card instead
            slots = compiled.cards_by_id[card_id].slots
            balances[card_id] = max(0, balances.get(card_id, 0) - slots)

    def ledger(asset: str, delta: int, reason: str | None = None) -> None:
        plan.ledger_entry(
            key,
            NewLedgerEntry(
                org_id=event.org_id,
                customer_id=original.customer_id,
                asset=asset,
                delta=delta,
                kind=event.kind.value,
                external_id=event.tx_external_id,
                transaction_id=None,
                rule_set_version=original.rule_set_version,
                reason=reason,
            ),
        )
        plan.wallet_delta(WalletDelta(original.customer_id, event.org_id, asset, delta))

    taken = step.points
    if org.negative_balance_policy != "allow_negative":
        taken = min(taken, max(state.points, 0))
    if taken:
        clamped = step.points - taken
        ledger(POINTS, -taken, f"clamped to zero: {clamped} not taken back" if clamped else None)
        state.points -= taken
    elif step.points:
        ledger(POINTS, 0, f"clamped to zero: {step.points} not taken back")
    stamps_taken: dict[str, int] = {}
    for card_id in set(step.stamps) | set(balances):
        before = state.stamps.get(card_id, 0)
        after = balances.get(card_id, before)
        if after != before:
            ledger(f"stamps:{card_id}", after - before)
            stamps_taken[card_id] = after - before
            state.stamps[card_id] = after
    lifetime_delta = -min(step.points, state.lifetime)
    state.lifetime += lifetime_delta
    old_tier, state.tier = state.tier, rules.tier_for(state.lifetime, compiled)
    plan.progress(original.customer_id, lifetime_delta, state.tier)
    common = {"external_id": original.external_id, "reversal": event.tx_external_id}
    plan.event(
        event.org_id,
        original.customer_id,
        "points.reversed",
        **common,
        kind=event.kind.value,
        points=taken,
        requested=step.points,
        stamps=stamps_taken,
        coupons_voided=[list(c) for c in step.coupons_to_void],
        balance=state.points,
    )
    if old_tier != state.tier:
        plan.event(
            event.org_id,
            original.customer_id,
            "tier.changed",
            **common,
            old=old_tier,
            new=state.tier,
        )

    original.reversed = step
    status = "reversed" if step.complete else "partially_reversed"
    plan.effects.order_updates[(event.org_id, original.external_id)] = (
        status,
        _dumps(rules.reversal_to_dict(step)),
    )
    plan.applied += 1
    record(
        reversal_row(
            event,
            customer_id=original.customer_id,
            status="applied",
            points=-step.points,
            stamps=stamps_taken,
            detail={
                "points_requested": step.points,
                "points_taken": taken,
                "coupons_voided": [list(c) for c in step.coupons_to_void],
                "complete": step.complete,
            },
            version=original.rule_set_version,
        )
    )
