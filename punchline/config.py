"""One settings class for every Punchline process (API, worker, CLI).

Every value comes from the environment with the ``PUNCHLINE_`` prefix, except
``DATABASE_URL``, which keeps its conventional name.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEV_SECRET = "punchline-dev-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PUNCHLINE_", extra="ignore")

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/punchline",
        validation_alias=AliasChoices("DATABASE_URL", "PUNCHLINE_DATABASE_URL"),
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)

    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    partitions: int = Field(default=12, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=5)
    consumer_group: str = "punchline-workers"
    session_timeout_s: float = Field(default=10.0, ge=1.0, le=300.0)

    batch_size: int = Field(default=500, ge=1, le=10_000)
    batch_within_s: float = Field(default=0.05, gt=0.0, le=10.0)
    # How long the broker may hold a worker's fetch when no record is ready. faust's
    # own 1500 ms put a ~0.5 s floor under accept->applied on Tansu (ADR 0008).
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=1500)
    db_retry_max_backoff_s: float = Field(default=5.0, gt=0.0)
    worker_health_port: int = Field(default=9100, ge=0, le=65535)
    heartbeat_path: str | None = None
    orphan_after_s: float = Field(default=3600.0, gt=0.0)
    orphan_check_every_s: float = Field(default=30.0, gt=0.0)
    # How long the worker keeps the ids of events the edge refused (503). A refused
    # event delivered later than this would be applied; a week is far past any resend.
    refusal_retention_s: float = Field(default=7 * 86400.0, gt=0.0)

    produce_timeout_s: float = Field(default=1.5, gt=0.0, le=30.0)
    api_key_cache_ttl_s: float = Field(default=5.0, ge=0.0, le=300.0)
    # While Postgres is down, a key known within this long keeps its last answer.
    api_key_stale_s: float = Field(default=300.0, ge=0.0, le=3600.0)
    max_wait_s: float = Field(default=10.0, ge=0.0, le=60.0)
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)

    # Synchronous POS paths (issue 4): PIN challenges, QR codes, rate limits.
    pin_ttl_s: float = Field(default=300.0, gt=0.0, le=86_400.0)
    pin_digits: int = Field(default=4, ge=4, le=6)
    pin_max_attempts: int = Field(default=3, ge=1, le=10)
    pin_issue_limit: str = "10/hour"
    qr_ttl_s: int = Field(default=86_400, ge=60, le=30 * 86_400)
    webhook_pos_wait_s: float = Field(default=8.0, ge=0.0, le=60.0)
    default_phone_region: str = Field(default="IE", pattern=r"^[A-Z]{2}$")
    rate_limit_storage_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "rate_limit_storage_url", "PUNCHLINE_RATE_LIMIT_STORAGE_URL", "RATE_LIMIT_STORAGE_URL"
        ),
    )
    rate_limit_defaults: dict[str, str] = Field(
        default_factory=lambda: {
            "earn": "60/minute",
            "redeem": "60/minute",
            "coupons": "60/minute",
            "customer": "30/minute",
        }
    )

    secret_key: str = _DEV_SECRET
    environment: str = "dev"
    log_json: bool = False
    log_level: str = "INFO"

    # Outbox relay and webhook dispatcher (issue 5).
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval_s: float = Field(default=0.2, gt=0.0, le=60.0)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_backoff_initial_s: float = Field(default=1.0, gt=0.0, le=3_600.0)
    webhook_backoff_max_s: float = Field(default=300.0, gt=0.0, le=86_400.0)
    webhook_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    webhook_concurrency: int = Field(default=64, ge=1, le=10_000)
    webhook_poll_interval_s: float = Field(default=0.5, gt=0.0, le=60.0)
    webhook_lease_s: float = Field(default=30.0, ge=1.0, le=3_600.0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return to_async_url(value)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def ingest_topic(self) -> str:
        return self.topic("punchline.ingest.v1")

    @property
    def dlq_topic(self) -> str:
        return self.topic("punchline.dlq.v1")

    @property
    def events_topic(self) -> str:
        return self.topic("punchline.events.v1")

    @property
    def webhook_consumer_group(self) -> str:
        return f"{self.consumer_group}-webhooks"

    def check_production_safety(self) -> None:
        """Refuse to run a production process with the development secret."""
        if self.environment == "production" and self.secret_key == _DEV_SECRET:
            raise RuntimeError("PUNCHLINE_SECRET_KEY must be set in production")


def to_async_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def to_libpq_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
