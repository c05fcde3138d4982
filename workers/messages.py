"""Decode step: raw Kafka record → a validated event, or poison with a reason."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import ValidationError

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


def decode(record: Record) -> IngestEvent | Poison:
    if not record.value:
        return Poison(record, "empty message")
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
        return IngestEvent.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]
        )
        return Poison(record, f"schema validation failed: {problems}")
