"""docs/topic-contract.md: the committed schema is the model's; a chain can produce directly."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from punchline.db.repositories import transactions
from schemas.events import IngestEvent
from schemas.export_json_schema import DOCS_SCHEMAS, documents, main, stale
from tests.support.books import count_transactions, points_total
from tests.support.factories import Tenant, order_body
from tests.support.polling import eventually
from tests.support.workers import WorkerPool

ORG = "3f0c2a9e-1b7d-4c55-9a1e-5b2d7c8e9f01"


def hand_written_event(*, org_id: str, customer_code: str, external_id: str) -> dict[str, Any]:
    """An event as a chain's own producer would write it, following the doc, not our code."""
    return {
        "schema_version": 1,
        "kind": "order",
        "event_id": str(uuid.uuid4()),
        "org_id": org_id,
        "external_id": external_id,
        "customer": {"type": "code", "value": customer_code},
        "accepted_at": "2026-11-02T09:30:01+00:00",
        "order": order_body(customer_code=customer_code, external_id=external_id),
    }


def _committed_schema() -> dict[str, Any]:
    return orjson.loads((DOCS_SCHEMAS / "ingest-event.v1.json").read_bytes())  # type: ignore[no-any-return]


def test_committed_json_schemas_match_the_models() -> None:
    assert stale() == [], "run: python -m schemas.export_json_schema"
    for name, content in documents().items():
        assert (DOCS_SCHEMAS / name).read_bytes() == content, name


def test_the_check_flags_a_stale_or_missing_file(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "ingest-event.v1.json").write_text("{}\n")
    (tmp_path / "dead-letter.v1.json").unlink()
    assert sorted(stale(tmp_path)) == ["dead-letter.v1.json", "ingest-event.v1.json"]
    assert main(["--check", "--out", str(tmp_path)]) == 1


def test_committed_schema_describes_the_version_and_kinds() -> None:
    schema = _committed_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["x-schema-version"] == 1
    assert schema["properties"]["schema_version"]["const"] == 1
    kinds = schema["$defs"]["IngestKind"]["enum"]
    assert sorted(kinds) == ["cancel", "delete", "earn", "order", "refund"]


@pytest.mark.parametrize(
    ("mutate", "valid"),
    [
        pytest.param(lambda e: e, True, id="as documented"),
        pytest.param(lambda e: e | {"schema_version": 2}, False, id="unknown schema_version"),
        pytest.param(lambda e: e | {"kind": "redeem"}, False, id="unknown kind"),
        pytest.param(lambda e: e | {"colour": "red"}, False, id="unknown field"),
        pytest.param(
            lambda e: e | {"customer": {"type": "card", "value": "1"}}, False, id="customer type"
        ),
        pytest.param(lambda e: {k: v for k, v in e.items() if k != "org_id"}, False, id="no org"),
    ],
)
def test_committed_schema_and_the_workers_model_agree(mutate: Any, valid: bool) -> None:
    event = mutate(hand_written_event(org_id=ORG, customer_code="ABCDEF12", external_id="pos-1"))
    schema_errors = list(Draft202012Validator(_committed_schema()).iter_errors(event))
    assert (not schema_errors) is valid, schema_errors
    try:
        IngestEvent.model_validate(event)
        model_valid = True
    except ValidationError:
        model_valid = False
    assert model_valid is valid


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_an_event_produced_straight_to_the_topic_is_applied_once(
    settings: Settings, engine: AsyncEngine, tenant: Tenant, workers: WorkerPool
) -> None:
    from workers.topics import ensure_topics

    await ensure_topics(settings)
    workers.start()
    code = tenant.customer_codes[0]
    event = hand_written_event(org_id=str(tenant.org_id), customer_code=code, external_id="chain-1")
    assert not list(Draft202012Validator(_committed_schema()).iter_errors(event))
    key = f"{tenant.org_id}:code:{code}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    # At least once: the chain's producer retried, so the same event arrives twice. A marker
    # on the same key (so the same partition) follows; once it is applied, so are both copies.
    marker = hand_written_event(
        org_id=str(tenant.org_id), customer_code=code, external_id="chain-2"
    )
    try:
        for message in (event, event, marker):
            await producer.send_and_wait(settings.ingest_topic, orjson.dumps(message), key=key)
    finally:
        await producer.stop()

    async def row_of(external_id: str) -> transactions.TransactionRow | None:
        async with engine.connect() as conn:
            return await transactions.get_transaction(
                conn, org_id=tenant.org_id, external_id=external_id, kind="order"
            )

    await eventually(
        lambda: row_of("chain-2"), lambda r: r is not None, timeout_s=90, describe="marker applied"
    )
    row = await row_of("chain-1")
    assert row is not None, workers.logs()
    assert row.status == "applied", (row, workers.logs())
    assert str(row.event_id) == event["event_id"]
    # Default rules: 1 point per 100 cents, floor. 2 x 350 + 450 = 1150 cents.
    assert row.points == 11
    assert await count_transactions(engine, tenant.org_id) == 2
    assert await points_total(engine, tenant.org_id) == 22
