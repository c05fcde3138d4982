"""Signed customer QR payloads, rendered with segno.

Payload: ``PL1.<org hex>.<customer code>.<expiry unix s>.<signature>``, the
signature an HMAC-SHA256 of the rest under the server secret. A look-up by a
forged, foreign or expired payload gets 422 ``invalid_qr``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import segno

from ingest_api.errors import ApiError

_VERSION = "PL1"
_SHAPE = re.compile(r"^PL1\.([0-9a-f]{32})\.([0-9A-F]{8})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class SignedQr:
    payload: str
    expires_at: datetime


def _signature(secret: bytes, body: str) -> str:
    mac = hmac.new(secret, b"punchline-qr:" + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def sign(secret: bytes, *, org_id: uuid.UUID, code: str, now: datetime, ttl_s: int) -> SignedQr:
    expires = int((now + timedelta(seconds=ttl_s)).timestamp())
    body = f"{_VERSION}.{org_id.hex}.{code.upper()}.{expires}"
    return SignedQr(f"{body}.{_signature(secret, body)}", datetime.fromtimestamp(expires, UTC))


def invalid_qr() -> ApiError:
    return ApiError(422, "invalid_qr", "Invalid or expired QR code.")


def verify(secret: bytes, payload: str, *, org_id: uuid.UUID, now: datetime) -> str:
    """The customer code in a valid payload of this org; 422 ``invalid_qr`` otherwise."""
    match = _SHAPE.match(payload.strip())
    if match is None:
        raise invalid_qr()
    org_hex, code, expires, signature = match.groups()
    body = payload.strip().rsplit(".", 1)[0]
    if not hmac.compare_digest(_signature(secret, body), signature):
        raise invalid_qr()
    if org_hex != org_id.hex or int(expires) <= now.timestamp():
        raise invalid_qr()
    return code


def render(payload: str, kind: str) -> bytes:
    """``svg`` or ``png`` bytes of the QR code."""
    buffer = io.BytesIO()
    segno.make(payload, error="m").save(buffer, kind=kind, scale=6, border=2)
    return buffer.getvalue()
