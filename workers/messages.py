"""Decode step: raw Kafka record → a validated event, or poison with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import SchemaValidator

from schemas.common import has_nul, refuse_nul
from schemas.events import INGEST_SCHEMA_VERSION, DeadLetter, IngestEvent


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Poison:
    record: Record
    reason: str

    def dead_letter(self) -> DeadLetter:
        return DeadLetter(
            reason=self.reason[:2000],
            topic=self.record.topic,
            partition=self.record.partition,
            offset=self.record.offset,
            key=_text(self.record.key),
            value=_text(self.record.value) or "",
        )


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _without_nul_checks(schema: Any) -> Any:
    """A copy of a core schema without its per-field ``refuse_nul`` validators."""
    if isinstance(schema, dict):
        function = schema.get("function")
        if (
            schema.get("type") == "function-after"
            and isinstance(function, dict)
            and function.get("function") is refuse_nul
        ):
            return _without_nul_checks(schema["schema"])
        return {k: _without_nul_checks(v) for k, v in schema.items()}
    if isinstance(schema, list | tuple):
        return type(schema)(_without_nul_checks(v) for v in schema)
    return schema


# IngestEvent's own validation, minus the per-field NUL checks (a third of its cost). Only
# for JSON without a \u0000 escape: that escape is the only way a JSON text can carry a NUL
# (a raw control character is invalid JSON), so there is no NUL for those checks to find.
_NO_NUL_EVENT = SchemaValidator(_without_nul_checks(IngestEvent.__pydantic_core_schema__))
_NUL_ESCAPE = b"\\u0000"


def decode(record: Record) -> IngestEvent | Poison:
    if not record.value:
        return Poison(record, "empty message")
    if _NUL_ESCAPE not in record.value:
        try:
            event: IngestEvent = _NO_NUL_EVENT.validate_json(record.value)
            return event
        except ValidationError:
            pass  # the full path below gives the reason, exactly as before
    return _decode_slowly(record)


def _decode_slowly(record: Record) -> IngestEvent | Poison:
    assert record.value
    try:
        data = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        return Poison(record, f"invalid JSON: {exc}")
    if not isinstance(data, dict):
        return Poison(record, "the message is not a JSON object")
    version = data.get("schema_version")
    if version != INGEST_SCHEMA_VERSION:
        return Poison(record, f"unsupported schema_version {version!r}")
    try:
        event = IngestEvent.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]
        )
        return Poison(record, f"schema validation failed: {problems}")
    if has_nul(data):  # also in fields without a check of their own: Postgres refuses NUL
        return Poison(record, "schema validation failed: text must not contain NUL characters")
    return event
