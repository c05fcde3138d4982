"""Customers: enrolment, look-ups, search and the signed QR code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from ingest_api.auth import PosKey, PosOrCustomerAppKey
from ingest_api.errors import ApiError
from ingest_api.rate_limits import rate_limited
from ingest_api.responses import JSONResponse
from ingest_api.routes.common import EnvDep
from ingest_api.services import customers, enrollment, phones, qr
from schemas.customers import (
    CustomerOut,
    CustomerPage,
    EnrollIn,
    EnrollmentOut,
    QrOut,
    check_email,
)

router = APIRouter(tags=["customers"], dependencies=[Depends(rate_limited("customer"))])

CodePath = Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{8}$")]


@router.post(
    "/v1/customers",
    status_code=201,
    response_model=EnrollmentOut,
    responses={200: {"model": EnrollmentOut, "description": "the email was already enrolled"}},
)
async def enroll(body: EnrollIn, principal: PosKey, env: EnvDep) -> JSONResponse:
    out = await enrollment.enroll(env, principal.org_id, body)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if out.is_new else 200)


@router.get("/v1/customers/search", response_model=CustomerPage)
async def search(
    principal: PosKey,
    env: EnvDep,
    q: Annotated[str, Query(min_length=1, max_length=100)],
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CustomerPage:
    return await customers.search(env, principal.org_id, q.strip(), page, limit)


def one_of(**given: str | None) -> tuple[str, str]:
    present = [(k, v) for k, v in given.items() if v is not None]
    if len(present) != 1:
        raise phones.invalid("query", f"give exactly one of {', '.join(given)}")
    return present[0]


@router.get("/v1/customers", response_model=CustomerOut)
async def lookup(
    principal: PosKey,
    env: EnvDep,
    email: Annotated[str | None, Query(max_length=254)] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    code: Annotated[str | None, Query(pattern=r"^[0-9A-Fa-f]{8}$")] = None,
    qr: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
) -> CustomerOut:
    kind, value = one_of(email=email, phone=phone, code=code, qr=qr)
    if kind == "email":
        try:
            check_email(value)
        except ValueError as exc:
            raise phones.invalid("email", str(exc)) from exc
        return await customers.by_email(env, principal.org_id, value)
    if kind == "phone":
        e164 = phones.to_e164(value, region=env.phone_region)
        return await customers.by_phone(env, principal.org_id, e164)
    if kind == "code":
        return await customers.by_code(env, principal.org_id, value)
    return await customers.by_qr(env, principal.org_id, value)


@router.get("/v1/customers/{code}", response_model=CustomerOut)
async def get_customer(code: CodePath, principal: PosKey, env: EnvDep) -> CustomerOut:
    return await customers.by_code(env, principal.org_id, code)


@router.get("/v1/customers/{code}/qr", response_model=QrOut)
async def get_qr(code: CodePath, principal: PosOrCustomerAppKey, env: EnvDep) -> QrOut:
    signed = await customers.signed_qr(env, principal.org_id, code)
    base = f"/v1/customers/{code.upper()}/qr"
    return QrOut(
        customer_code=code.upper(),
        payload=signed.payload,
        expires_at=signed.expires_at,
        svg_url=f"{base}.svg",
        png_url=f"{base}.png",
    )


_MEDIA = {"svg": "image/svg+xml", "png": "image/png"}


@router.get(
    "/v1/customers/{code}/qr.{fmt}",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}},
)
async def get_qr_image(
    code: CodePath,
    fmt: Annotated[str, Path(pattern=r"^(svg|png)$")],
    principal: PosOrCustomerAppKey,
    env: EnvDep,
) -> Response:
    if fmt not in _MEDIA:
        raise ApiError(404, "not_found")
    signed = await customers.signed_qr(env, principal.org_id, code)
    return Response(
        qr.render(signed.payload, fmt),
        media_type=_MEDIA[fmt],
        headers={"Cache-Control": "no-store", "X-QR-Expires-At": signed.expires_at.isoformat()},
    )
