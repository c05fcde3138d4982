"""Phone numbers to E.164 with ``phonenumbers``; a number without ``+`` is read in
the org's default region."""

from __future__ import annotations

import phonenumbers

from ingest_api.errors import ApiError


def invalid(path: str, message: str) -> ApiError:
    """A service-side validation failure, in the same shape as the schema's."""
    return ApiError(
        422,
        "validation_error",
        "The request does not match the schema.",
        details=[{"path": path, "message": message}],
    )


def to_e164(raw: str, *, region: str, path: str = "phone") -> str:
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise invalid(path, "not a valid phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise invalid(path, "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
