"""RFC 7240 ``Prefer: wait=N``."""

from __future__ import annotations

import re

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d{1,4})\"?", re.IGNORECASE)


def preferred_wait(header: str | None, *, cap_s: float) -> float:
    """Seconds the client is willing to wait, capped; 0 when it did not ask."""
    if not header:
        return 0.0
    match = _WAIT.search(header)
    if not match:
        return 0.0
    return min(float(match.group(1)), cap_s)
