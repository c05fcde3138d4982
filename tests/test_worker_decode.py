"""The worker's decode step: the fast path validates exactly as the full one."""

from __future__ import annotations

import uuid

import orjson
import pytest

from schemas.events import IngestEvent
from workers.messages import Poison, Record, decode

ORG = uuid.UUID("e51d182e-575d-4627-a7fc-99eb2097b3b2")


def _order(**over: object) -> dict[str, object]:
    order: dict[str, object] = {
        "customer": {"type": "email", "value": " Ann@Example.COM "},
        "external_id": "o-1",
        "occurred_at": "2026-11-16T15:27:00+01:00",
        "store_id": "galway-1",
        "currency": "EUR",
        "lines": [{"sku": "FLW", "name": "Flat White", "quantity": 2, "unit_price_cents": 360}],
    }
    order.update(over)
    return {
        "schema_version": 1,
        "kind": "order",
        "event_id": str(uuid.uuid4()),
        "org_id": str(ORG),
        "external_id": "o-1",
        "customer": {"type": "phone", "value": "(087) 123-4567"},
        "accepted_at": "2026-11-16T15:27:01Z",
        "order": order,
    }


def _decode(value: bytes) -> IngestEvent | Poison:
    return decode(Record("t", 0, 0, None, value))


def test_the_fast_path_gives_the_models_own_result() -> None:
    body = _order()
    event = _decode(orjson.dumps(body))
    assert event == IngestEvent.model_validate(body)
    assert isinstance(event, IngestEvent) and event.order is not None
    assert event.customer.value == "+0871234567"
    assert event.order.customer.value == "ann@example.com"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty message"),
        (b"{", "invalid JSON"),
        (b"[1]", "the message is not a JSON object"),
        (orjson.dumps({**_order(), "schema_version": 2}), "unsupported schema_version 2"),
        (orjson.dumps(_order(currency="eur")), "schema validation failed: order.currency"),
    ],
)
def test_poison_keeps_its_reason(body: bytes, reason: str) -> None:
    poison = _decode(body)
    assert isinstance(poison, Poison) and poison.reason.startswith(reason)


@pytest.mark.parametrize(
    "body",
    [
        _order(store_id="a\x00b"),  # a field with a NUL check of its own
        {**_order(), "kind": "cancel", "order": None, "reversal": {"reason": "x\x00"}},
        {
            **_order(),
            "kind": "earn",
            "order": None,
            "earn": {
                "card_type": "point",
                "amount_cents": 1,
                "occurred_at": "2026-11-16T15:27:00Z",
                "store_id": "\x00",
            },
        },
    ],
)
def test_a_nul_anywhere_is_poison(body: dict[str, object]) -> None:
    raw = orjson.dumps(body)
    assert b"\\u0000" in raw
    poison = _decode(raw)
    assert isinstance(poison, Poison) and "NUL" in poison.reason


def test_an_escaped_backslash_before_u0000_is_text_not_nul() -> None:
    event = _decode(orjson.dumps(_order(store_id="a\\u0000")))
    assert isinstance(event, IngestEvent) and event.order is not None
    assert event.order.store_id == "a\\u0000"
