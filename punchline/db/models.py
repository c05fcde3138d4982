"""SQLAlchemy 2 models: the schema the first migration creates.

Wallets hold one row per (customer, asset). The asset is ``points`` or
``stamps:<card_id>``, so any number of stamp cards fits without a migration.
Every wallet equals the sum of its ledger entries: that is the invariant the
reconcile command checks.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TIMESTAMP

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = TIMESTAMP(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def _created_at() -> Mapped[datetime]:
    return mapped_column(Timestamp, server_default=func.now(), nullable=False)


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(Text, server_default="UTC")
    currency: Mapped[str] = mapped_column(Text, server_default="EUR")
    verification_preset: Mapped[str] = mapped_column(Text, server_default="standard")
    negative_balance_policy: Mapped[str] = mapped_column(Text, server_default="clamp_to_zero")
    subscription_status: Mapped[str] = mapped_column(Text, server_default="active")
    created_at: Mapped[datetime] = _created_at()


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(Text, unique=True)
    prefix: Mapped[str] = mapped_column(Text)
    last4: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{pos}")
    rate_limits: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("org_id", "code"),
        Index("uq_customers_org_id_email_lower", "org_id", text("lower(email)"), unique=True),
        Index("ix_customers_org_id_phone", "org_id", "phone"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    birthday: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, server_default="ACTIVE")
    tier: Mapped[str | None] = mapped_column(Text)
    lifetime_points: Mapped[int] = mapped_column(BigInteger, server_default="0")
    consent_terms_at: Mapped[datetime | None] = mapped_column(Timestamp)
    consent_privacy_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = _created_at()
    erased_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Wallet(Base):
    __tablename__ = "wallets"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    asset: Mapped[str] = mapped_column(Text, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    balance: Mapped[int] = mapped_column(BigInteger, server_default="0")
    fills: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class Transaction(Base):
    """One row per (org, external_id, kind): the idempotency key of the sink."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("org_id", "external_id", "kind"),
        Index(
            "ix_transactions_org_id_parent_external_id",
            "org_id",
            "parent_external_id",
            postgresql_where=text("parent_external_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(Text)
    points: Mapped[int] = mapped_column(BigInteger, server_default="0")
    stamps: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    coupons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    rules_applied: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    order_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    rule_set_version: Mapped[int | None] = mapped_column(Integer)
    duplicate_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Synchronous paths (redeem, reward redemption): the request and the first answer,
    # so a retry with the same external_id replays the answer and moves nothing.
    request: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Order lifecycle: a reversal row points at its order; the order keeps the running total.
    parent_external_id: Mapped[str | None] = mapped_column(Text)
    stream_key: Mapped[str | None] = mapped_column(Text)
    reversed: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    occurred_at: Mapped[datetime | None] = mapped_column(Timestamp)
    accepted_at: Mapped[datetime] = mapped_column(Timestamp)
    applied_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=text("clock_timestamp()")
    )


class LedgerEntry(Base):
    """An append-only movement on one wallet asset."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("org_id", "external_id", "kind", "asset"),
        Index("ix_ledger_entries_customer_id_asset", "customer_id", "asset"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    asset: Mapped[str] = mapped_column(Text)
    delta: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)
    transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("transactions.id", ondelete="SET NULL"), index=True
    )
    rule_set_version: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=text("clock_timestamp()")
    )


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("customer_id", "card_id", "fill_number"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(Text, unique=True)
    source: Mapped[str] = mapped_column(Text)
    card_id: Mapped[str | None] = mapped_column(Text)
    fill_number: Mapped[int | None] = mapped_column(Integer)
    transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("transactions.id", ondelete="SET NULL"), index=True
    )
    reward_name: Mapped[str] = mapped_column(Text)
    reward_type: Mapped[str] = mapped_column(Text)
    reward_value: Mapped[int] = mapped_column(BigInteger)
    reward_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("rewards.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(Text, server_default="issued")
    issued_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    redeemed_at: Mapped[datetime | None] = mapped_column(Timestamp)


class OutboxEvent(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()"), unique=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=text("clock_timestamp()")
    )
    published_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ConsumerOffset(Base):
    """The next offset to process per partition, written in the batch transaction."""

    __tablename__ = "consumer_offsets"

    group_id: Mapped[str] = mapped_column(Text, primary_key=True)
    topic: Mapped[str] = mapped_column(Text, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class RuleSetVersion(Base):
    """An org's earn rules, one immutable row per version; the highest is active."""

    __tablename__ = "rule_sets"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created_at()
    created_by: Mapped[str | None] = mapped_column(Text)


class DailyPoints(Base):
    """Points earned per customer per local day, for the per-day cap."""

    __tablename__ = "daily_points"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger, server_default="0")


class Reward(Base):
    """An org's reward catalogue entry: bought with points, delivered as a coupon."""

    __tablename__ = "rewards"
    __table_args__ = (Index("ix_rewards_org_id_active", "org_id", "active"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    points_cost: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(Text)
    value: Mapped[int] = mapped_column(BigInteger, server_default="0")
    required_tier: Mapped[str | None] = mapped_column(Text)
    icon: Mapped[str | None] = mapped_column(Text)
    validity_days: Mapped[int] = mapped_column(Integer, server_default="30")
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = _created_at()


class PinChallenge(Base):
    """A PIN challenge bound to one customer and one action.

    The PIN itself is never stored: it is derived from the challenge id with the
    server secret, and only a keyed hash of it is kept for verification.
    """

    __tablename__ = "pin_challenges"
    __table_args__ = (
        Index("ix_pin_challenges_customer_id_action", "customer_id", "action", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # Issue order: "the newest challenge" must not depend on clock resolution.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(Text)
    pin_hash: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    consumed_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ParkedEvent(Base):
    """A cancel, delete or refund that arrived before its order: applied when the order
    arrives, or reported ``orphaned`` after ``PUNCHLINE_ORPHAN_AFTER_S``."""

    __tablename__ = "parked_events"
    __table_args__ = (
        UniqueConstraint("org_id", "event_id"),
        Index("ix_parked_events_org_id_order_external_id", "org_id", "order_external_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    order_external_id: Mapped[str] = mapped_column(Text)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text, server_default="parked")
    parked_at: Mapped[datetime] = mapped_column(Timestamp, server_default=text("clock_timestamp()"))
    resolved_at: Mapped[datetime | None] = mapped_column(Timestamp)


# --- Merchant administration and outbound webhooks (issue 5) -------------------------

# The relay keeps each customer's events in order: it checks, per row, for an older
# unpublished row of the same customer that another relay holds.
Index(
    "ix_outbox_unpublished_customer",
    OutboxEvent.org_id,
    OutboxEvent.customer_id,
    OutboxEvent.id,
    postgresql_where=OutboxEvent.published_at.is_(None),
)


class Product(Base):
    """A merchant's catalogue entry; order lines that carry only a sku are named from it."""

    __tablename__ = "products"
    __table_args__ = (Index("ix_products_org_id_category", "org_id", "category"),)

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    price_cents: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class WebhookEndpoint(Base):
    """A merchant URL subscribed to event types; one dispatcher at a time holds its lease."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    secret: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=text("clock_timestamp()")
    )
    disabled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    lease_owner: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp)


class WebhookDelivery(Base):
    """One event for one endpoint: its exact body, its attempts and its outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        Index(
            "ix_webhook_deliveries_pending",
            "endpoint_id",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=text("clock_timestamp()")
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=text("clock_timestamp()")
    )
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)


class RefusedEvent(Base):
    """An event the edge answered 503 for after handing it to the producer.

    The broker may still append it (a resent batch, a request already on the wire);
    the worker refuses any event listed here, so a 503 never turns into an applied
    order behind the client's back. Written only on the produce failure path.
    """

    __tablename__ = "refused_events"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    refused_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=text("clock_timestamp()"), index=True
    )
