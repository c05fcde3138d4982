"""One delivery attempt: POST the signed body, and judge the answer (2xx is success)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from workers.webhooks.signing import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign

USER_AGENT = "Punchline-Webhooks/1"
_EXCERPT_BYTES = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None


def new_client(*, timeout_s: float, max_connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=timeout_s,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=100),
    )


async def _excerpt(response: httpx.Response) -> str:
    """The start of the answer, without reading an arbitrarily large body."""
    async for chunk in response.aiter_raw(_EXCERPT_BYTES):
        return chunk[:_EXCERPT_BYTES].decode(errors="replace")
    return ""


async def post(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    body: bytes,
    event_id: uuid.UUID,
    event_type: str,
    attempt: int,
) -> Outcome:
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_ID_HEADER: str(event_id),
        EVENT_TYPE_HEADER: event_type,
        "X-Punchline-Delivery-Attempt": str(attempt),
    }
    try:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            if 200 <= response.status_code < 300:
                return Outcome(ok=True, status_code=response.status_code, error=None)
            excerpt = await _excerpt(response)
    except httpx.HTTPError as exc:
        return Outcome(ok=False, status_code=None, error=f"{type(exc).__name__}: {exc}"[:500])
    return Outcome(
        ok=False, status_code=response.status_code, error=f"HTTP {response.status_code}: {excerpt}"
    )
