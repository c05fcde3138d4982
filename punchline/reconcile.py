"""``punchline reconcile``: check that the books balance.

Each invariant is one set-based query (``punchline.db.repositories.reconcile``) that
returns the offending rows, capped. The report lists every failed invariant with its
first rows; the command exits non-zero when any fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from punchline.db.repositories import reconcile as checks

DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Finding:
    """One invariant and the rows that break it (at most the limit)."""

    name: str
    description: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return not self.rows


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    org_id: uuid.UUID | None
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def finding(self, name: str) -> Finding:
        return next(f for f in self.findings if f.name == name)


Query = Callable[[AsyncConnection, uuid.UUID | None, int], Awaitable[list[dict[str, Any]]]]


def _invariants(outbox_grace_s: float) -> list[tuple[str, str, Query]]:
    return [
        (
            "wallet_equals_ledger",
            "every wallet equals the sum of its ledger entries",
            lambda c, o, n: checks.wallet_mismatches(c, org_id=o, limit=n),
        ),
        (
            "no_negative_balance",
            "no negative balance unless the org allows it",
            lambda c, o, n: checks.negative_balances(c, org_id=o, limit=n),
        ),
        (
            "applied_has_ledger",
            "every applied transaction has its ledger entries",
            lambda c, o, n: checks.transactions_without_ledger(c, org_id=o, limit=n),
        ),
        (
            "coupon_has_source",
            "every coupon has its source transaction",
            lambda c, o, n: checks.coupons_without_source(c, org_id=o, limit=n),
        ),
        (
            "outbox_published",
            f"every outbox event older than {outbox_grace_s:g}s was published",
            lambda c, o, n: checks.unpublished_outbox(c, org_id=o, grace_s=outbox_grace_s, limit=n),
        ),
    ]


async def reconcile(
    engine: AsyncEngine,
    org_id: uuid.UUID | None = None,
    outbox_grace_s: float = 60,
    *,
    limit: int = DEFAULT_LIMIT,
) -> ReconcileReport:
    """Run every invariant in one read-only, repeatable-read snapshot."""
    findings = []
    async with engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            for name, description, query in _invariants(outbox_grace_s):
                rows = await query(conn, org_id, limit + 1)
                findings.append(
                    Finding(name, description, rows[:limit], truncated=len(rows) > limit)
                )
    return ReconcileReport(org_id=org_id, findings=findings)


def _cell(value: object) -> str:
    return "NULL" if value is None else str(value)


def format_report(report: ReconcileReport) -> str:
    scope = f"org {report.org_id}" if report.org_id else "all orgs"
    if report.ok:
        return f"books balance ({scope}): {len(report.findings)} invariants hold\n"
    lines = [f"books DO NOT balance ({scope}): {len(report.failed)} invariant(s) failed", ""]
    for f in report.findings:
        if f.ok:
            lines.append(f"ok    {f.name}: {f.description}")
            continue
        more = "+" if f.truncated else ""
        lines.append(f"FAIL  {f.name}: {f.description} ({len(f.rows)}{more} rows)")
        for row in f.rows:
            lines.append("      " + ", ".join(f"{k}={_cell(v)}" for k, v in row.items()))
        if f.truncated:
            lines.append("      … more rows not shown")
    return "\n".join(lines) + "\n"
