"""PIN derivation and hashing: pure functions of the server secret.

The PIN of a challenge is HMAC(secret, challenge id) reduced to ``digits``
decimal digits, so the customer-facing app can show it without it ever being
stored. Only a keyed hash of it is stored, and guesses are compared in
constant time. PINs are strings: "0007" is not "7".
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass

from punchline.config import Settings


@dataclass(frozen=True, slots=True)
class PinPolicy:
    secret: bytes
    ttl_s: float
    digits: int
    max_attempts: int
    issue_limit: str

    @classmethod
    def from_settings(cls, settings: Settings) -> PinPolicy:
        return cls(
            secret=settings.secret_key.encode(),
            ttl_s=settings.pin_ttl_s,
            digits=settings.pin_digits,
            max_attempts=settings.pin_max_attempts,
            issue_limit=settings.pin_issue_limit,
        )


def derive_pin(secret: bytes, challenge_id: uuid.UUID, digits: int) -> str:
    mac = hmac.new(secret, b"punchline-pin:" + challenge_id.bytes, hashlib.sha256).digest()
    return str(int.from_bytes(mac[:8], "big") % 10**digits).zfill(digits)


def hash_pin(secret: bytes, challenge_id: uuid.UUID, pin: str) -> str:
    message = b"punchline-pin-hash:" + challenge_id.bytes + b":" + pin.encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def pin_matches(secret: bytes, challenge_id: uuid.UUID, pin: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_pin(secret, challenge_id, pin), stored_hash)
