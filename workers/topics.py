"""Topic creation at start-up (idempotent). No compacted topics: Tansu has no compaction."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from punchline.config import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings) -> None:
    wanted = {
        settings.ingest_topic: settings.partitions,
        settings.dlq_topic: 1,
        settings.events_topic: settings.partitions,
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=settings.replication_factor)
            for name, n in wanted.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics", extra={"topics": [t.name for t in missing]})
    finally:
        await admin.close()
