"""Schemathesis over every operation of the live OpenAPI spec (issue 7).

The app runs in process against the real test database and the session's Tansu broker;
schemathesis loads the spec the app serves at /openapi.json and sends valid and invalid
requests to every operation, each with a key of the scope the route needs. Any 5xx, and
any response that breaks its own documented status codes, content type, headers or
schema, fails the operation.

The budget is PUNCHLINE_FUZZ_EXAMPLES examples per operation (small in ``make test``,
larger in ``make fuzz``), from a fixed seed (PUNCHLINE_FUZZ_SEED) so a run is repeatable.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ingest_api.app import create_app
from punchline.config import Settings
from punchline.db.engine import create_engine
from punchline.devstack.broker import TansuBroker
from tests.conftest import make_settings
from tests.support.factories import GENEROUS_LIMITS, create_key, create_tenant

EXAMPLES = int(os.environ.get("PUNCHLINE_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("PUNCHLINE_FUZZ_SEED", "20261102"))

# The routes only a customer_app key may call (no admin bypass); see tests/test_security.py.
CUSTOMER_APP_ONLY = {("GET", "/v1/customers/{code}/pin")}

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "checks": {
            # A request can fit the schema and still be refused for what it means: the
            # contract answers those with 412 pin_required or 422 and a code
            # (insufficient_balance, email_required, a customer code that is not 8 hex
            # characters, refund_id without kind=refund...). Still no 400, 405, 413 or 415.
            "positive_data_acceptance": {
                "expected-statuses": [
                    "2xx",
                    "3xx",
                    "401",
                    "403",
                    "404",
                    "409",
                    "412",
                    "422",
                    "429",
                    "5xx",
                ]
            }
        },
        "operations": [
            {
                # Each item is validated on its own: a bad order comes back "rejected" in
                # the 202's results instead of failing the batch (tests/test_orders_batch.py).
                "include-path": "/v1/orders:batch",
                "include-method": "POST",
                "checks": {"negative_data_rejection": {"enabled": False}},
            },
            {
                # GET /v1/coupons/{token} matches this URL too (token "redeem"), so the 405
                # rightly allows GET; the check only knows the POST the template documents.
                "include-path": "/v1/coupons/redeem",
                "include-method": "POST",
                "checks": {"allow_header_conformance": {"enabled": False}},
            },
        ],
    }
)


@dataclass(frozen=True)
class Tenant:
    """One org's key for a set of routes, and the codes of its customers."""

    key: str
    customer_codes: list[str]


@dataclass(frozen=True)
class Tenants:
    # Two orgs, so that what the admin routes change (a cancelled subscription, a PIN
    # preset, erased customers) cannot turn the POS routes' answers into 402s and 412s.
    admin: Tenant
    pos: Tenant
    customer_app: Tenant

    def for_operation(self, method: str, path: str) -> Tenant:
        if path.startswith("/v1/admin/"):
            return self.admin
        if (method.upper(), path) in CUSTOMER_APP_ONLY:
            return self.customer_app
        return self.pos


@pytest.fixture(scope="module")
async def fuzz_settings(database_url: str, broker: TansuBroker) -> Settings:
    from workers.topics import ensure_topics

    # No worker runs, so a request that waits for its outcome always waits in vain: keep
    # the waits (Prefer: wait=N, /webhook/pos by default) short.
    settings = make_settings(database_url, broker.bootstrap, webhook_pos_wait_s=0.1, max_wait_s=0.2)
    await ensure_topics(settings)
    return settings


# Filled by the fuzz_tenants fixture, read by the generation hooks below.
TENANTS: list[Tenants] = []


@pytest.fixture(scope="module")
async def fuzz_tenants(database_url: str) -> AsyncIterator[Tenants]:
    engine = create_engine(Settings(database_url=database_url), pool_size=2)
    try:
        admin_org, pos_org = await create_tenant(engine), await create_tenant(engine)

        async def key(org_id: uuid.UUID, scope: str) -> str:
            return await create_key(
                engine, org_id=org_id, scopes=[scope], rate_limits=GENEROUS_LIMITS
            )

        tenants = Tenants(
            admin=Tenant(await key(admin_org.org_id, "admin"), admin_org.customer_codes),
            pos=Tenant(await key(pos_org.org_id, "pos"), pos_org.customer_codes),
            customer_app=Tenant(await key(pos_org.org_id, "customer_app"), pos_org.customer_codes),
        )
    finally:
        await engine.dispose()
    TENANTS[:] = [tenants]
    yield tenants
    TENANTS.clear()


@dataclass(frozen=True)
class LiveApi:
    base_url: str
    session: requests.Session


@pytest.fixture(scope="module")
def live_api(fuzz_settings: Settings) -> Iterator[LiveApi]:
    """The app served by uvicorn on 127.0.0.1, on a thread with its own event loop."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(fuzz_settings), host="127.0.0.1", port=0, lifespan="on", log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="fuzz-api", daemon=True)
    thread.start()
    for _ in range(600):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.05)
    assert server.started, "the API did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    session = requests.Session()
    try:
        base_url = f"http://127.0.0.1:{port}"
        # The spec fuzzed is the one the running app serves.
        assert session.get(f"{base_url}/openapi.json").json() == SPEC
        yield LiveApi(base_url=base_url, session=session)
    finally:
        session.close()
        server.should_exit = True
        thread.join(timeout=30)


# Built at import (pytest parametrizes one test per operation at collection time) from an
# app that is never started; the live_api fixture checks the running app serves the same.
SPEC = create_app(make_settings("postgresql+asyncpg://127.0.0.1/unused", "127.0.0.1:1")).openapi()
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)

# Random customer codes almost never exist, so without help every order, redeem and
# look-up would stop at 404 or customer_not_found. Where a request carries a customer code
# (a CustomerRef of type code, a `code` or `customer_code` field or parameter), these hooks
# also try it with the codes of the calling org's real customers. A value is replaced only
# where the replacement keeps the request exactly as valid or invalid as it was.
CODE = re.compile(r"[0-9A-Fa-f]{8}")
CODE_FIELDS = {"code", "customer_code"}


def _with_code(value: Any, code: str) -> Any:
    if isinstance(value, list):
        return [_with_code(item, code) for item in value]
    if not isinstance(value, dict):
        return value
    out = {
        k: code
        if k in CODE_FIELDS and isinstance(v, str) and CODE.fullmatch(v)
        else _with_code(v, code)
        for k, v in value.items()
    }
    ref = out.get("value")
    if out.get("type") == "code" and isinstance(ref, str) and 1 <= len(ref) <= 254:
        out["value"] = code  # a CustomerRef: value is any 1-254 characters in the schema
    return out


def _also_real_customers(context: schemathesis.HookContext, value: Any) -> st.SearchStrategy[Any]:
    if not TENANTS or context.operation is None or not isinstance(value, dict):
        return st.just(value)
    tenant = TENANTS[0].for_operation(context.operation.method, context.operation.path)
    # Real customers first: hypothesis leans towards the first choice.
    return st.sampled_from([*(_with_code(value, c) for c in tenant.customer_codes), value])


for _container in ("body", "path_parameters", "query"):
    schema.hook(f"flatmap_{_container}")(_also_real_customers)


@pytest.mark.fuzz
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_every_operation_survives_fuzzing(
    case: schemathesis.Case, live_api: LiveApi, fuzz_tenants: Tenants
) -> None:
    tenant = fuzz_tenants.for_operation(case.operation.method, case.operation.path)
    case.call_and_validate(
        base_url=live_api.base_url, session=live_api.session, headers={"X-Api-Key": tenant.key}
    )
