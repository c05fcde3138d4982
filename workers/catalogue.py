"""Name order lines that carry only a sku from the merchant's product catalogue.

A line without a name takes the catalogue's name (or, unknown, its sku); a
line without a category takes the catalogue's category, so category rules
apply to POS systems that send skus only (seed 004).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from punchline.db.repositories.batches import CatalogueEntry
from schemas.events import IngestEvent


def skus_to_look_up(events: Sequence[IngestEvent]) -> list[tuple[uuid.UUID, str]]:
    return [
        (e.org_id, line.sku)
        for e in events
        if e.order is not None
        for line in e.order.lines
        if line.sku is not None and (line.name is None or line.category is None)
    ]


def enrich(
    event: IngestEvent, catalogue: dict[tuple[uuid.UUID, str], CatalogueEntry]
) -> IngestEvent:
    if event.order is None:
        return event
    lines = []
    changed = False
    for line in event.order.lines:
        if line.sku is None or (line.name is not None and line.category is not None):
            lines.append(line)
            continue
        entry = catalogue.get((event.org_id, line.sku))
        name = line.name or (entry.name if entry else line.sku)
        category = line.category or (entry.category if entry else None)
        lines.append(line.model_copy(update={"name": name, "category": category}))
        changed = True
    if not changed:
        return event
    return event.model_copy(update={"order": event.order.model_copy(update={"lines": lines})})
