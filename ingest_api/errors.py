"""Domain errors carry their status and machine code; one set of handlers renders them.

Shape: ``{"error": "<code>", "message": "…", …extra}`` (seed 000's codes).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ingest_api.responses import JSONResponse
from schemas.errors import ErrorOut

INVALID_KEY = "invalid or missing API key"
TOO_MANY_REQUESTS = "too many requests"

# Every operation documents its 4xx answers as this one shape (the app passes it to FastAPI).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "Refused: the error code says why."}
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str | None = None, **extra: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code}
        if self.message:
            body["message"] = self.message
        body.update(self.extra)
        return body


def error_response(
    status: int,
    code: str,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    err = ApiError(status, code, message, **extra)
    return JSONResponse(err.body(), status_code=status, headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


_STATUS_CODES = {
    400: "bad_request",
    401: INVALID_KEY,
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: TOO_MANY_REQUESTS,
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "The body is not valid JSON.")
        details = [
            {"path": _loc(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))[:300]}
            for e in errors[:50]
        ]
        return error_response(
            422, "validation_error", "The request does not match the schema.", details=details
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) and exc.detail != code else None
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return error_response(exc.status_code, code, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this URL. Starlette's 405 names only the first
    route whose path matched, so ``OPTIONS /v1/admin/org`` advertised GET but not PATCH."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))
