"""Deliver one endpoint's pending events in order, each retried with backoff (tenacity).

One task per leased endpoint: a failing endpoint only ever waits on itself. The
backoff sleeps renew the endpoint's lease and give up their HTTP slot, so a slow
or dead endpoint holds neither other merchants' deliveries nor a share of the
concurrency limit while it waits. Every attempt is recorded before the next one,
so a restarted dispatcher resumes the schedule (attempts, next_attempt_at).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from punchline.config import Settings
from punchline.db.repositories import webhook_deliveries, webhooks
from punchline.db.repositories.webhook_deliveries import PendingDelivery
from punchline.db.repositories.webhooks import Target
from workers.webhooks import sender

log = logging.getLogger("punchline.webhooks")
_BATCH = 50


@dataclass(frozen=True, slots=True)
class Policy:
    max_attempts: int
    initial_s: float
    max_s: float
    lease_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_attempts=settings.webhook_max_attempts,
            initial_s=settings.webhook_backoff_initial_s,
            max_s=settings.webhook_backoff_max_s,
            lease_s=settings.webhook_lease_s,
        )


class Interrupted(Exception):
    """Stop working on this endpoint: lease lost, endpoint disabled, or shutting down."""


class AttemptFailed(Exception):
    pass


class EndpointWorker:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        client: httpx.AsyncClient,
        policy: Policy,
        owner: uuid.UUID,
        gate: asyncio.Semaphore,
        stopping: asyncio.Event,
    ) -> None:
        self._engine = engine
        self._client = client
        self._policy = policy
        self._owner = owner
        self._gate = gate
        self._stopping = stopping

    async def run(self, endpoint_id: uuid.UUID) -> None:
        try:
            while not self._stopping.is_set():
                async with self._engine.connect() as conn:
                    target = await webhooks.target(conn, endpoint_id)
                    batch = await webhook_deliveries.pending(
                        conn, endpoint_id=endpoint_id, limit=_BATCH
                    )
                if target is None or not target.active or not batch:
                    return
                for delivery in batch:
                    await self._deliver(target, delivery)
        except Interrupted as exc:
            log.info("endpoint interrupted", extra={"endpoint": str(endpoint_id), "why": str(exc)})
        except Exception:
            log.exception("endpoint worker failed", extra={"endpoint": str(endpoint_id)})
        finally:
            try:
                async with self._engine.begin() as conn:
                    await webhooks.release_lease(conn, endpoint_id=endpoint_id, owner=self._owner)
            except Exception:  # the lease expires on its own
                log.warning("could not release lease", extra={"endpoint": str(endpoint_id)})

    async def _deliver(self, target: Target, delivery: PendingDelivery) -> None:
        if delivery.wait_s > 0:  # resumed mid-backoff: honour the stored schedule
            await self._sleep(target.id, delivery.wait_s)
        policy = self._policy

        async def sleep(seconds: float) -> None:
            await self._sleep(target.id, seconds)

        async def before_sleep(state: RetryCallState) -> None:
            async with self._engine.begin() as conn:
                await webhook_deliveries.schedule(
                    conn, delivery_id=delivery.id, after_s=state.upcoming_sleep
                )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, policy.max_attempts - delivery.attempts)),
            wait=wait_exponential(
                multiplier=policy.initial_s * 2**delivery.attempts, max=policy.max_s
            )
            + wait_random(0, policy.initial_s / 2),
            retry=retry_if_exception_type(AttemptFailed),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    number = delivery.attempts + attempt.retry_state.attempt_number
                    await self._attempt(target, delivery, number)
        except AttemptFailed:
            log.warning(
                "delivery failed for good",
                extra={"endpoint": str(target.id), "event_id": str(delivery.event_id)},
            )

    async def _attempt(self, target: Target, delivery: PendingDelivery, number: int) -> None:
        await self._renew(target.id)
        async with self._gate:
            outcome = await sender.post(
                self._client,
                url=target.url,
                secret=target.secret,
                body=delivery.body.encode(),
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                attempt=number,
            )
        async with self._engine.begin() as conn:
            status = await webhook_deliveries.record_attempt(
                conn,
                delivery_id=delivery.id,
                ok=outcome.ok,
                status_code=outcome.status_code,
                error=outcome.error,
                max_attempts=self._policy.max_attempts,
            )
        if status == "cancelled":
            raise Interrupted("delivery cancelled")
        if not outcome.ok:
            raise AttemptFailed(outcome.error)

    async def _renew(self, endpoint_id: uuid.UUID) -> None:
        async with self._engine.begin() as conn:
            held = await webhooks.renew_lease(
                conn, endpoint_id=endpoint_id, owner=self._owner, lease_s=self._policy.lease_s
            )
        if not held:
            raise Interrupted("lease lost or endpoint disabled")

    async def _sleep(self, endpoint_id: uuid.UUID, seconds: float) -> None:
        """Sleep in slices, renewing the lease; end early on shutdown."""
        remaining = seconds
        while remaining > 0:
            step = min(remaining, self._policy.lease_s / 3)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=step)
            except TimeoutError:
                pass
            else:
                raise Interrupted("shutting down")
            remaining -= step
            await self._renew(endpoint_id)
