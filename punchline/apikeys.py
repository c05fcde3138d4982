"""API key format: ``sk_live_`` + 32 random characters. Only a hash is stored."""

from __future__ import annotations

import hashlib
import secrets
import string

KEY_PREFIX = "sk_live_"
_ALPHABET = string.ascii_letters + string.digits


def generate_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def hash_key(key: str) -> str:
    # Keys carry ~190 bits of entropy, so a fast hash is enough: no brute force can
    # walk that space, and lookups stay one indexed equality.
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 4]
