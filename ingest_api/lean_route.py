"""A FastAPI route whose common case skips FastAPI's per-request machinery.

The hot ingest routes (``POST /v1/orders``, ``POST /v1/orders:batch``) spend most
of their time in dependency solving and in parsing the body to Python objects
before validating them. A :class:`LeanRoute` keeps the endpoint, its signature
and so its OpenAPI documentation exactly as declared, but answers a well-formed
request with a *lean handler*: the body is parsed and validated in one
pydantic-core pass, and the route's dependencies are applied by hand, in the
order FastAPI applies them (see :func:`pos_principal`).

Anything off that path goes to FastAPI's own handler for the route, which then
does everything as it always did: the lean handler returns ``None`` (before any
side effect) when the body does not validate, so malformed JSON, 422 details
and every other error answer stay FastAPI's. A request whose content type is
not plain ``application/json``, or an app with dependency overrides (tests),
skips the lean handler altogether.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response

from ingest_api.auth import Principal, current_principal, require_scope
from ingest_api.rate_limits import route_rate_limit

LeanHandler = Callable[[Request, bytes], Awaitable[Response | None]]

_require_pos = require_scope("pos")


async def pos_principal(request: Request) -> Principal:
    """What ``PosKey`` plus the app's ``route_rate_limit`` establish, in FastAPI's order.

    The router-level ``route_rate_limit`` is solved first: it authenticates (401) and
    counts the hit (429); then the endpoint's ``PosKey`` checks the scope (403).
    """
    principal = await current_principal(request)
    await route_rate_limit(request, request.app.state.rate_limiter, principal)
    return await _require_pos(principal)


def _plain_json(request: Request) -> bool:
    content_type = request.headers.get("content-type")
    return content_type is not None and content_type.lower() == "application/json"


class LeanRoute(APIRoute):
    """Subclass with ``lean_handler`` set; see the module docstring."""

    lean_handler: ClassVar[LeanHandler]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fastapi_handler = super().get_route_handler()
        lean = type(self).lean_handler

        async def handler(request: Request) -> Response:
            if (
                _plain_json(request)
                and not request.app.dependency_overrides
                and MAX_BODY_SIZE_SCOPE_KEY not in request.scope
            ):
                try:
                    body = await request.body()
                except Exception as exc:  # as FastAPI's handler answers a failed read
                    raise HTTPException(
                        status_code=400, detail="There was an error parsing the body"
                    ) from exc
                if body:
                    response = await lean(request, body)
                    if response is not None:
                        return response
            # FastAPI's handler reads the body Starlette cached on this request.
            return await fastapi_handler(request)

        return handler


def lean_route(handler: LeanHandler) -> type[LeanRoute]:
    """A :class:`LeanRoute` class answering with ``handler``."""
    return type("LeanRoute", (LeanRoute,), {"lean_handler": staticmethod(handler)})


__all__ = ["LeanHandler", "LeanRoute", "lean_route", "pos_principal"]
