"""The offset gate: which records of a batch are new, already applied, or behind a gap.

The next offset of each partition is stored in Postgres in the batch
transaction, so the database, not the broker, decides what was applied. A
record below the stored offset is a redelivery and is skipped. A batch that
starts *after* the stored offset means records were skipped by the consumer;
that partition is refused and the consumer seeks back to the stored offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from workers.messages import Record


@dataclass(slots=True)
class GateResult:
    fresh: list[Record] = field(default_factory=list)
    redelivered: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # partition -> offset to seek to
    next_offsets: dict[int, int] = field(default_factory=dict)


def gate(
    records: Sequence[Record], stored: dict[int, int], *, earliest: dict[int, int] | None = None
) -> GateResult:
    """Split ``records`` by the stored next offsets (-1 = nothing stored yet).

    ``earliest`` holds the broker's first available offset per partition: a gap
    that starts below it is data the broker no longer has, and is accepted.
    """
    result = GateResult()
    expected = dict(stored)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        p = record.partition
        if p in result.refused:
            continue
        want = expected.get(p, -1)
        if want >= 0 and record.offset < want:
            result.redelivered += 1
            continue
        if want >= 0 and record.offset > want:
            if earliest is None or want >= earliest.get(p, 0):
                result.refused[p] = want
                continue
        result.fresh.append(record)
        expected[p] = record.offset + 1
        result.next_offsets[p] = record.offset + 1
    for p in result.refused:
        result.next_offsets.pop(p, None)
        result.fresh = [r for r in result.fresh if r.partition != p]
    return result
