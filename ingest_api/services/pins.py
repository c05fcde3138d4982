"""The PIN challenge state machine (seed 001, "PIN Validation API Flow").

- no PIN: a fresh challenge is issued (``pin.issued`` outbox event) → 412
  ``pin_required`` with ``challenge_id`` and ``remaining_attempts``;
- a PIN answers the customer's newest challenge for the action:
  right → verified; wrong → 422 ``pin_invalid`` with the remaining attempts;
  the last wrong one, and any after it → 422 ``pin_attempts_exceeded``;
  past the TTL → 422 ``pin_expired``. The next call without a PIN starts over.

:func:`check` runs in a transaction of its own that is committed even when it
refuses, so attempts and challenges survive the refusal. The verified challenge
is spent with :func:`spend` inside the business transaction, so a refused
business step (e.g. ``insufficient_balance``) leaves the PIN usable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from ingest_api.services.env import Env

from ingest_api.errors import ApiError
from ingest_api.rate_limits import RateLimiter, TooManyRequests, limit_item
from ingest_api.services.pin_codes import PinPolicy, derive_pin, hash_pin, pin_matches
from ingest_api.services.presets import Action, requires_pin
from punchline.db.repositories import domain_events
from punchline.db.repositories import pins as repo
from punchline.db.repositories.customer_queries import CustomerRecord


@dataclass(frozen=True, slots=True)
class PinGate:
    """The outcome of a PIN check: a verified challenge to spend, or an error to raise."""

    verified: uuid.UUID | None = None
    error: ApiError | None = None

    def raise_if_refused(self) -> None:
        if self.error is not None:
            raise self.error


OPEN = PinGate()


def _error(status: int, code: str, message: str, challenge_id: uuid.UUID, left: int) -> PinGate:
    return PinGate(
        error=ApiError(
            status, code, message, challenge_id=str(challenge_id), remaining_attempts=left
        )
    )


async def issue(
    conn: AsyncConnection,
    *,
    policy: PinPolicy,
    limiter: RateLimiter,
    customer: CustomerRecord,
    action: Action,
    now: datetime,
) -> PinGate:
    retry_after = await limiter.hit(
        limit_item(policy.issue_limit), "pin-issue", str(customer.org_id), str(customer.id)
    )
    if retry_after is not None:
        return PinGate(error=TooManyRequests(retry_after))
    challenge_id = uuid.uuid4()
    pin = derive_pin(policy.secret, challenge_id, policy.digits)
    expires_at = now + timedelta(seconds=policy.ttl_s)
    await repo.create(
        conn,
        challenge_id=challenge_id,
        org_id=customer.org_id,
        customer_id=customer.id,
        action=action.value,
        pin_hash=hash_pin(policy.secret, challenge_id, pin),
        max_attempts=policy.max_attempts,
        created_at=now,
        expires_at=expires_at,
    )
    await domain_events.add(
        conn,
        org_id=customer.org_id,
        customer_id=customer.id,
        event_type="pin.issued",
        payload={
            "challenge_id": str(challenge_id),
            "customer_code": customer.code,
            "action": action.value,
            "expires_at": expires_at.isoformat(),
        },
    )
    return _error(
        412,
        "pin_required",
        "Ask the customer for the PIN shown in their app.",
        challenge_id,
        policy.max_attempts,
    )


async def check(
    conn: AsyncConnection,
    *,
    policy: PinPolicy,
    limiter: RateLimiter,
    customer: CustomerRecord,
    action: Action,
    pin: str | None,
    now: datetime,
) -> PinGate:
    if pin is None:
        return await issue(
            conn, policy=policy, limiter=limiter, customer=customer, action=action, now=now
        )
    challenge = await repo.latest(conn, customer_id=customer.id, action=action.value)
    if challenge is None or challenge.consumed_at is not None:
        return await issue(
            conn, policy=policy, limiter=limiter, customer=customer, action=action, now=now
        )
    if now >= challenge.expires_at:
        return _error(422, "pin_expired", "The PIN has expired; retry without it.", challenge.id, 0)
    attempt = await repo.take_attempt(conn, challenge.id)
    if attempt is not None and pin_matches(policy.secret, challenge.id, pin, challenge.pin_hash):
        return PinGate(verified=challenge.id)
    left = 0 if attempt is None else challenge.max_attempts - attempt
    if left <= 0:
        return _error(
            422,
            "pin_attempts_exceeded",
            "Too many wrong PINs; retry without a PIN for a new one.",
            challenge.id,
            0,
        )
    return _error(422, "pin_invalid", "Wrong PIN.", challenge.id, left)


async def spend(conn: AsyncConnection, gate: PinGate, *, now: datetime) -> None:
    """Spend the verified challenge in the business transaction (no-op when not gated)."""
    if gate.verified is None:
        return
    if not await repo.consume(conn, gate.verified, now=now):
        raise ApiError(
            422,
            "pin_expired",
            "The PIN was already used; retry without it.",
            challenge_id=str(gate.verified),
            remaining_attempts=0,
        )


async def live_pins(
    conn: AsyncConnection, *, policy: PinPolicy, customer: CustomerRecord, now: datetime
) -> list[tuple[repo.ChallengeRow, str]]:
    """Open challenges with their PINs, newest first, for the customer-facing app."""
    rows = await repo.live_for_customer(conn, customer_id=customer.id, now=now)
    return [(row, derive_pin(policy.secret, row.id, policy.digits)) for row in rows]


async def gate_for(
    conn: AsyncConnection,
    env: Env,
    *,
    preset: str,
    customer: CustomerRecord,
    action: Action,
    pin: str | None,
) -> PinGate:
    """The PIN gate of ``action`` under the org's verification preset (open when not gated)."""
    if not requires_pin(preset, action):
        return OPEN
    return await check(
        conn,
        policy=env.pins,
        limiter=env.limiter,
        customer=customer,
        action=action,
        pin=pin,
        now=env.now,
    )
