"""Pure ASGI middleware: refuse oversized bodies (413) and non-JSON bodies (415).

It runs before routing, so nothing is parsed or written for such requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = {b"POST", b"PUT", b"PATCH"}


class _TooLarge(Exception):
    pass


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"error": code, "message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].encode() not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _reply(
                send, 413, "payload_too_large", f"The body exceeds {self.max_bytes} bytes."
            )
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        has_body = length not in (None, b"0") or b"transfer-encoding" in headers
        if has_body and content_type != b"application/json" and not content_type.endswith(b"+json"):
            await _reply(send, 415, "unsupported_media_type", "Send the body as application/json.")
            return

        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if too_large:
                # The framework caught _TooLarge while reading the body and answers 400;
                # a body over the limit is a 413, whoever noticed it.
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await _reply(
                        send, 413, "payload_too_large", f"The body exceeds {self.max_bytes} bytes."
                    )
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await _reply(
                    send, 413, "payload_too_large", f"The body exceeds {self.max_bytes} bytes."
                )
