"""Enrolment (``POST /v1/customers``, ``POST /webhook/customer``): email and consent
to the terms are required; an existing email returns the existing customer."""

from __future__ import annotations

import uuid
from datetime import date

from ingest_api.errors import ApiError
from ingest_api.services import customers, phones
from ingest_api.services.env import Env
from punchline.db.repositories import domain_events, enrollment
from schemas.customers import EnrollIn, EnrollmentOut


def _check(body: EnrollIn, env: Env) -> tuple[str, str | None]:
    if not body.email:
        raise ApiError(422, "email_required", "An email is required to enrol a customer.")
    if body.consent_terms is not True:
        raise ApiError(422, "consent_terms_required", "The customer must consent to the terms.")
    if body.birthday is not None and not date(1900, 1, 1) <= body.birthday <= env.now.date():
        raise phones.invalid("birthday", "a birthday is between 1900-01-01 and today")
    phone = None
    if body.phone is not None:
        phone = phones.to_e164(body.phone, region=env.phone_region)
    return body.email, phone


async def enroll(env: Env, org_id: uuid.UUID, body: EnrollIn) -> EnrollmentOut:
    email, phone = _check(body, env)
    async with env.engine.begin() as conn:
        customer, is_new = await enrollment.enroll(
            conn,
            org_id=org_id,
            email=email,
            phone=phone,
            name=body.name,
            birthday=body.birthday,
            consent_privacy=body.consent_privacy,
            now=env.now,
        )
        if is_new:
            await domain_events.add(
                conn,
                org_id=org_id,
                customer_id=customer.id,
                event_type="customer.enrolled",
                payload={
                    "customer_code": customer.code,
                    "consent_terms_at": env.now.isoformat(),
                    "consent_privacy": body.consent_privacy,
                },
            )
        out = await customers.view(conn, customer, await customers.default_card(conn, org_id))
    return EnrollmentOut(**out.model_dump(), is_new=is_new)
