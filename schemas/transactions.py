"""The answer of ``GET /v1/transactions/{external_id}`` and of waited-for orders."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class TransactionStatus(StrEnum):
    pending = "pending"
    applied = "applied"
    duplicate = "duplicate"
    rejected = "rejected"
    reversed = "reversed"
    partially_reversed = "partially_reversed"
    parked = "parked"
    orphaned = "orphaned"


class HistoryEntry(BaseModel):
    """One cancel, delete or refund of an order."""

    kind: str
    external_id: str
    status: str
    error: str | None = None
    points: int = 0
    stamps: dict[str, int] = {}
    accepted_at: datetime | None = None
    applied_at: datetime | None = None


class TransactionOut(BaseModel):
    external_id: str
    status: TransactionStatus
    kind: str = "order"
    error: str | None = None
    points: int | None = None
    stamps: dict[str, int] | None = None
    coupons: list[dict[str, Any]] | None = None
    rules_applied: list[dict[str, Any]] | None = None
    rule_set_version: int | None = None
    accepted_at: datetime | None = None
    applied_at: datetime | None = None
    reversed_points: int | None = None
    history: list[HistoryEntry] | None = None
    status_url: str


class Accepted(BaseModel):
    external_id: str
    event_id: str
    status: TransactionStatus = TransactionStatus.pending
    status_url: str
