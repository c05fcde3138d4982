"""Webhook signatures: ``X-Punchline-Signature: t=<unix ts>,v1=<hex>``.

``v1`` is HMAC-SHA256 of ``f"{t}.{body}"`` under the endpoint's secret. The
timestamp is signed too, so a receiver that rejects old timestamps (see
:func:`verify_signature`) rejects replays. Receivers copy this check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Punchline-Signature"
EVENT_ID_HEADER = "X-Punchline-Event-Id"
EVENT_TYPE_HEADER = "X-Punchline-Event-Type"
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value for ``body`` signed at ``timestamp`` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> bool:
    """True only for a well-formed header whose timestamp is within ``tolerance_s`` of
    ``now`` and one of whose ``v1`` values matches (compared in constant time)."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = _digest(secret, timestamp, raw)
    return any(hmac.compare_digest(expected, c) for c in candidates)
