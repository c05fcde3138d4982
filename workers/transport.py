"""The worker's Kafka transport: faust's aiokafka driver with a short fetch wait.

faust 0.15.3 builds its worker consumer with ``fetch_max_wait_ms=1500`` fixed. A
broker may hold a fetch over several partitions for that long before answering,
even when records arrive (Tansu does: 483 ms median produce→consume over 12
partitions with 1500, 17 ms with 100), which puts a floor under the
accept→applied latency. This subclass builds the same consumer with
``PUNCHLINE_FETCH_MAX_WAIT_MS``; everything else is faust's own construction.
The app picks it through :meth:`faust.App._new_transport`, the factory faust
uses for its transport, in :class:`PunchlineApp`.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.exceptions import ImproperlyConfigured
from faust.transport.drivers import aiokafka as driver
from faust.types import TransportT

from punchline.config import Settings


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    fetch_max_wait_ms: int = 100

    def _create_worker_consumer(self, transport: driver.Transport) -> aiokafka.AIOKafkaConsumer:
        # faust's method, with one change: fetch_max_wait_ms (see the module docstring).
        conf = self.app.conf
        isolation_level = "read_committed" if self.consumer.in_transaction else "read_uncommitted"
        has_changelog_tables = bool(self.app.tables.changelog_topics)
        self._assignor = (
            self.app.assignor
            if conf.table_standby_replicas > 0 or has_changelog_tables
            else driver.RoundRobinPartitionAssignor
        )
        auth_settings = driver.credentials_to_aiokafka_auth(
            conf.broker_credentials, conf.ssl_context
        )
        max_poll_interval = conf.broker_max_poll_interval or 0
        request_timeout = conf.broker_request_timeout
        session_timeout = conf.broker_session_timeout
        if session_timeout > request_timeout:
            raise ImproperlyConfigured(
                f"Setting broker_session_timeout={session_timeout} cannot be greater than"
                f" broker_request_timeout={request_timeout}"
            )
        consumer_kwargs: dict[str, Any] = {}
        if driver._AIOKAFKA_HAS_API_VERSION:
            consumer_kwargs["api_version"] = conf.consumer_api_version
        return aiokafka.AIOKafkaConsumer(
            **consumer_kwargs,
            client_id=conf.broker_client_id,
            group_id=conf.id,
            group_instance_id=conf.consumer_group_instance_id,
            bootstrap_servers=driver.server_list(transport.url, transport.default_port),
            partition_assignment_strategy=[self._assignor],
            enable_auto_commit=False,
            auto_offset_reset=conf.consumer_auto_offset_reset,
            max_poll_records=conf.broker_max_poll_records,
            max_poll_interval_ms=int(max_poll_interval * 1000.0),
            max_partition_fetch_bytes=conf.consumer_max_fetch_size,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            request_timeout_ms=int(request_timeout * 1000.0),
            check_crcs=conf.broker_check_crcs,
            session_timeout_ms=int(session_timeout * 1000.0),
            rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000.0),
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000.0),
            isolation_level=isolation_level,
            metadata_max_age_ms=conf.consumer_metadata_max_age_ms,
            connections_max_idle_ms=conf.consumer_connections_max_idle_ms,
            **auth_settings,
        )


def transport_class(fetch_max_wait_ms: int) -> type[driver.Transport]:
    thread = type("ConsumerThread", (_ConsumerThread,), {"fetch_max_wait_ms": fetch_max_wait_ms})

    class ShortWaitConsumer(driver.Consumer):
        def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
            return thread(self, loop=self.loop, beacon=self.beacon)

    return type("Transport", (driver.Transport,), {"Consumer": ShortWaitConsumer})


class PunchlineApp(faust.App):
    """A faust app whose consumer waits at most ``fetch_max_wait_ms`` per fetch."""

    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        self._transport_class = transport_class(settings.fetch_max_wait_ms)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return self._transport_class(self.conf.broker_consumer, self)
