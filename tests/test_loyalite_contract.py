"""Seed 001's client examples, run unchanged (translated line by line to Python) against
the ``/webhook/*`` routes, through Kafka and a real worker for every earn."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.config import Settings
from tests.support.books import ledger_mismatches
from tests.support.factories import (
    Tenant,
    configure_org,
    create_key,
    create_tenant,
)
from tests.support.pos import FakeClock, pos_client
from tests.support.workers import WorkerPool

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

PromptForPin = Callable[[int, str], Awaitable[str]]


class LoyaliteError(Exception):
    pass


class Loyalite:
    """The functions of seed 001, over one HTTP client and one API key."""

    def __init__(self, http: httpx.AsyncClient, api_key: str) -> None:
        self.http = http
        self.headers = {"Content-Type": "application/json", "X-Api-Key": api_key}

    async def enroll_customer(self, email: str) -> dict[str, Any]:
        res = await self.http.post(
            "/webhook/customer",
            json={"email": email, "consent_terms": True, "consent_privacy": True},
            headers=self.headers,
        )
        if not res.is_success:
            raise LoyaliteError(f"Enroll failed: {res.status_code}")
        return res.json()["data"]  # type: ignore[no-any-return]

    async def earn_points(self, code: str, amount: float, order_id: str) -> dict[str, Any]:
        res = await self.http.post(
            "/webhook/pos",
            json={
                "customer_code": code,
                "amount": amount,
                "card_type": "point",
                "external_id": order_id,
            },
            headers=self.headers,
        )
        if not res.is_success:
            raise LoyaliteError(f"Earn failed: {res.status_code} {res.text}")
        return res.json()["data"]  # type: ignore[no-any-return]

    async def redeem_points(self, code: str, points: int, redeem_id: str) -> dict[str, Any]:
        res = await self.http.post(
            "/webhook/redeem",
            json={
                "customer_code": code,
                "value": points,
                "card_type": "point",
                "external_id": redeem_id,
            },
            headers=self.headers,
        )
        if res.status_code == 422:
            raise LoyaliteError("Insufficient balance")
        if res.status_code == 402:
            raise LoyaliteError("Subscription required")
        if not res.is_success:
            raise LoyaliteError(f"Redeem failed: {res.status_code}")
        return res.json()["data"]  # type: ignore[no-any-return]

    async def _pin_loop(
        self,
        path: str,
        base: dict[str, Any],
        prompt: PromptForPin,
        *,
        break_on: tuple[str, ...] = (),
    ) -> httpx.Response:
        res = await self.http.post(path, json=base, headers=self.headers)
        while res.status_code in (412, 422, 429):
            err = res.json()
            code = err["error"]
            if code in break_on:
                break
            if code == "manual_code_disabled":
                raise LoyaliteError("Strict org — scan the QR instead of typing the customer code.")
            if code in ("pin_expired", "pin_attempts_exceeded"):
                res = await self.http.post(path, json=base, headers=self.headers)
                continue
            if code in ("pin_required", "pin_invalid"):
                pin = await prompt(err["remaining_attempts"], err["challenge_id"])
                res = await self.http.post(
                    path, json={**base, "verification_pin": pin}, headers=self.headers
                )
                continue
            break
        return res

    async def earn_points_with_pin(
        self,
        code: str,
        amount: float,
        order_id: str,
        prompt: PromptForPin,
        *,
        manual_code: bool = False,
    ) -> dict[str, Any]:
        base = {
            "customer_code": code,
            "amount": amount,
            "card_type": "point",
            "external_id": order_id,
            "manual_code": manual_code,
        }
        res = await self._pin_loop("/webhook/pos", base, prompt)
        if not res.is_success:
            raise LoyaliteError(f"Earn failed: {res.status_code} {res.text}")
        return res.json()["data"]  # type: ignore[no-any-return]

    async def redeem_points_with_pin(
        self,
        code: str,
        points: int,
        redeem_id: str,
        prompt: PromptForPin,
        *,
        manual_code: bool = False,
    ) -> dict[str, Any]:
        base = {
            "customer_code": code,
            "value": points,
            "card_type": "point",
            "external_id": redeem_id,
            "manual_code": manual_code,
        }
        res = await self._pin_loop(
            "/webhook/redeem", base, prompt, break_on=("insufficient_balance",)
        )
        if res.status_code == 422 and res.json()["error"] == "insufficient_balance":
            raise LoyaliteError("Insufficient balance")
        if res.status_code == 402:
            raise LoyaliteError("Subscription required")
        if not res.is_success:
            raise LoyaliteError(f"Redeem failed: {res.status_code}")
        return res.json()  # type: ignore[no-any-return]  # seed 001 returns the whole body here

    async def earn_stamps(self, code: str, stamps: int, order_id: str) -> dict[str, Any]:
        res = await self.http.post(
            "/webhook/pos",
            json={
                "customer_code": code,
                "amount": stamps,
                "card_type": "stamp",
                "external_id": order_id,
            },
            headers=self.headers,
        )
        if not res.is_success:
            raise LoyaliteError(f"Earn failed: {res.status_code} {res.text}")
        return res.json()["data"]  # type: ignore[no-any-return]

    async def redeem_coupon(self, qr_token: str) -> dict[str, Any]:
        res = await self.http.post(
            "/webhook/coupons/redeem", json={"token": qr_token}, headers=self.headers
        )
        if res.status_code == 404:
            raise LoyaliteError("Coupon not found")
        if res.status_code == 409:
            raise LoyaliteError("Coupon already used")
        if not res.is_success:
            raise LoyaliteError(f"Redeem failed: {res.status_code}")
        return res.json()["data"]  # type: ignore[no-any-return]

    async def redeem_coupon_with_pin(
        self, qr_token: str, prompt: PromptForPin, *, manual_code: bool = False
    ) -> dict[str, Any]:
        res = await self._pin_loop(
            "/webhook/coupons/redeem", {"token": qr_token, "manual_code": manual_code}, prompt
        )
        if res.status_code == 404:
            raise LoyaliteError("Coupon not found")
        if res.status_code == 409:
            raise LoyaliteError("Coupon already used")
        if not res.is_success:
            raise LoyaliteError(f"Redeem failed: {res.status_code}")
        return res.json()["data"]  # type: ignore[no-any-return]

    async def lookup_by_qr(self, qr_payload: str) -> dict[str, Any]:
        res = await self.http.get(
            "/webhook/customer",
            params={"qr": qr_payload},
            headers={"X-Api-Key": self.headers["X-Api-Key"]},
        )
        if res.status_code == 422:
            raise LoyaliteError("Invalid or expired QR code")
        if res.status_code == 404:
            raise LoyaliteError("Customer not found")
        if not res.is_success:
            raise LoyaliteError(f"Lookup failed: {res.status_code}")
        return res.json()["data"]  # type: ignore[no-any-return]

    async def process_qr_scan(self, qr_payload: str, order_id: str) -> dict[str, Any]:
        customer = await self.lookup_by_qr(qr_payload)
        return await self.earn_stamps(customer["customer_code"], 1, order_id)

    async def checkout(
        self,
        *,
        email: str,
        order_total: float,
        order_id: str,
        points_to_redeem: int = 0,
        prompt: PromptForPin,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        customer = await self.enroll_customer(email)
        if points_to_redeem > 0 and customer["point_balance"] >= points_to_redeem:
            await self.redeem_points_with_pin(
                customer["customer_code"], points_to_redeem, f"redeem_{order_id}", prompt
            )
        balance = await self.earn_points_with_pin(
            customer["customer_code"], order_total, order_id, prompt
        )
        return customer, balance


class Customer:
    """The customer's phone: reads the PIN from the customer-facing app."""

    def __init__(self, http: httpx.AsyncClient, app_key: str) -> None:
        self.http = http
        self.headers = {"X-Api-Key": app_key}
        self.code = ""

    async def pin(self, challenge_id: str) -> str:
        body = (await self.http.get(f"/v1/customers/{self.code}/pin", headers=self.headers)).json()
        [match] = [p for p in body["pins"] if p["challenge_id"] == challenge_id]
        return match["pin"]  # type: ignore[no-any-return]


class Cashier:
    """``promptForPin``: scripted typos first, then what the customer reads out."""

    def __init__(
        self, customer: Customer, *, typos: int = 0, on_first: Callable[[], None] | None = None
    ) -> None:
        self.customer = customer
        self.typos = typos
        self.on_first = on_first
        self.prompts: list[tuple[int, str]] = []

    async def __call__(self, remaining_attempts: int, challenge_id: str) -> str:
        self.prompts.append((remaining_attempts, challenge_id))
        pin = await self.customer.pin(challenge_id)
        if self.on_first is not None and len(self.prompts) == 1:
            self.on_first()  # e.g. the cashier hesitates past the PIN's TTL
        if self.typos > 0:
            self.typos -= 1
            return str((int(pin) + 1) % 10 ** len(pin)).zfill(len(pin))
        return pin


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http(
    settings: Settings, clock: FakeClock, workers: WorkerPool
) -> AsyncIterator[httpx.AsyncClient]:
    workers.start()
    tuned = settings.model_copy(update={"webhook_pos_wait_s": 60.0})
    async with pos_client(tuned, clock) as client:
        yield client


@pytest.fixture
async def org(engine: AsyncEngine) -> Tenant:
    """A fresh org whose key has seed 000's default limits, as a Loyalite merchant's would."""
    tenant = await create_tenant(engine, customers_count=0)
    tenant.key = await create_key(engine, org_id=tenant.org_id, scopes=["pos"])
    return tenant


@pytest.fixture
async def loyalite(http: httpx.AsyncClient, org: Tenant) -> Loyalite:
    return Loyalite(http, org.key)


@pytest.fixture
async def phone(http: httpx.AsyncClient, org: Tenant, engine: AsyncEngine) -> Customer:
    return Customer(http, await create_key(engine, org_id=org.org_id, scopes=["customer_app"]))


def _email() -> str:
    return f"guest-{secrets.token_hex(4)}@example.com"


async def test_points_campaign_enroll_earn_redeem(
    loyalite: Loyalite, org: Tenant, engine: AsyncEngine
) -> None:
    email = _email()
    data = await loyalite.enroll_customer(email)
    assert set(data) == {"customer_code", "is_new", "masked_email", "stamp_count", "point_balance"}
    assert data["is_new"] is True and data["masked_email"] == f"g***@{email.split('@')[1]}"
    assert (data["stamp_count"], data["point_balance"]) == (0, 0)
    code = data["customer_code"]
    assert (await loyalite.enroll_customer(email))["is_new"] is False

    earned = await loyalite.earn_points(code, 25.5, "order-1")
    assert earned == {"stamps": 0, "points": 25}
    again = await loyalite.earn_points(code, 25.5, "order-1")  # a POS retry: nothing twice
    assert again == {"stamps": 0, "points": 25}

    redeemed = await loyalite.redeem_points(code, 10, "redeem-1")
    assert redeemed == {"stamps": 0, "points": 15}
    with pytest.raises(LoyaliteError, match="Insufficient balance"):
        await loyalite.redeem_points(code, 16, "redeem-2")
    assert await ledger_mismatches(engine, org.org_id) == []


async def test_stamp_campaign_fills_a_card_and_the_coupon_is_redeemed(
    loyalite: Loyalite,
) -> None:
    code = (await loyalite.enroll_customer(_email()))["customer_code"]
    seven = await loyalite.earn_stamps(code, 7, "visit-1")
    assert seven == {"stamps": 7, "points": 0}
    full = await loyalite.earn_stamps(code, 3, "visit-2")
    assert (full["stamps"], full["points"]) == (0, 0)
    coupon = full["coupon"]
    assert set(coupon) == {"id", "name", "qr_token"} and coupon["name"] == "Free Coffee"

    redeemed = await loyalite.redeem_coupon(coupon["qr_token"])
    assert (redeemed["id"], redeemed["name"], redeemed["status"]) == (
        coupon["id"],
        "Free Coffee",
        "redeemed",
    )
    assert redeemed["redeemed_at"]
    with pytest.raises(LoyaliteError, match="Coupon already used"):
        await loyalite.redeem_coupon(coupon["qr_token"])
    with pytest.raises(LoyaliteError, match="Coupon not found"):
        await loyalite.redeem_coupon("no-such-token")


async def test_card_type_defaults_and_subscription_gating(
    loyalite: Loyalite, org: Tenant, engine: AsyncEngine
) -> None:
    code = (await loyalite.enroll_customer(_email()))["customer_code"]
    headers = loyalite.headers
    http = loyalite.http
    # /webhook/pos defaults to points (amount 12 = 12.00 → 12 points) ...
    earn = await http.post(
        "/webhook/pos",
        json={"customer_code": code, "amount": 12, "external_id": "d-1"},
        headers=headers,
    )
    assert earn.json() == {"data": {"stamps": 0, "points": 12}}, earn.text
    await loyalite.earn_stamps(code, 2, "d-2")
    # ... and /webhook/redeem to stamps.
    redeem = await http.post(
        "/webhook/redeem",
        json={"customer_code": code, "value": 1, "external_id": "d-3"},
        headers=headers,
    )
    assert redeem.json() == {"data": {"stamps": 1, "points": 12}}, redeem.text

    await configure_org(engine, org_id=org.org_id, subscription_status="expired")
    with pytest.raises(LoyaliteError, match="Subscription required"):
        await loyalite.redeem_points(code, 1, "d-4")
    assert await loyalite.earn_points(code, 1, "d-5") == {"stamps": 1, "points": 13}


@pytest.mark.parametrize("preset", ["standard", "balanced", "strict"])
async def test_pin_loops_of_every_preset(
    loyalite: Loyalite,
    phone: Customer,
    org: Tenant,
    engine: AsyncEngine,
    clock: FakeClock,
    preset: str,
) -> None:
    await configure_org(engine, org_id=org.org_id, preset=preset)
    phone.code = (await loyalite.enroll_customer(_email()))["customer_code"]
    code = phone.code
    earn_gated = preset == "strict"
    redeem_gated = preset != "standard"

    # Earn, with one typo: Strict prompts twice, the others never.
    cashier = Cashier(phone, typos=1)
    assert await loyalite.earn_points_with_pin(code, 50, "o-1", cashier) == {
        "stamps": 0,
        "points": 50,
    }
    assert [n for n, _ in cashier.prompts] == ([3, 2] if earn_gated else [])

    # Redeem with three typos: attempts run out, the loop asks for a fresh PIN.
    cashier = Cashier(phone, typos=3)
    body = await loyalite.redeem_points_with_pin(code, 5, "r-1", cashier)
    assert body == {"data": {"stamps": 0, "points": 45}}
    if redeem_gated:
        assert [n for n, _ in cashier.prompts] == [3, 2, 1, 3]
        assert len({c for _, c in cashier.prompts}) == 2
    else:
        assert cashier.prompts == []

    # Redeem where the PIN expires while the cashier hesitates.
    cashier = Cashier(phone, on_first=lambda: clock.advance(seconds=301))
    body = await loyalite.redeem_points_with_pin(code, 5, "r-2", cashier)
    assert body == {"data": {"stamps": 0, "points": 40}}
    assert len(cashier.prompts) == (2 if redeem_gated else 0)

    # Stamps to a full card, then the coupon with the PIN loop.
    stamp_cashier = Cashier(phone)
    base = {"customer_code": code, "amount": 10, "card_type": "stamp", "external_id": "s-1"}
    res = await loyalite._pin_loop("/webhook/pos", base, stamp_cashier)
    assert res.status_code == 200, res.text
    token = res.json()["data"]["coupon"]["qr_token"]
    cashier = Cashier(phone, typos=1)
    coupon = await loyalite.redeem_coupon_with_pin(token, cashier)
    assert coupon["status"] == "redeemed"
    assert len(cashier.prompts) == (2 if redeem_gated else 0)

    # Strict refuses typed-in codes; the others accept them.
    if preset == "strict":
        with pytest.raises(LoyaliteError, match="scan the QR"):
            await loyalite.earn_points_with_pin(code, 1, "o-2", Cashier(phone), manual_code=True)
    else:
        await loyalite.earn_points_with_pin(code, 1, "o-2", Cashier(phone), manual_code=True)
    assert await ledger_mismatches(engine, org.org_id) == []


async def test_qr_scan_flow(
    loyalite: Loyalite, http: httpx.AsyncClient, clock: FakeClock, org: Tenant
) -> None:
    code = (await loyalite.enroll_customer(_email()))["customer_code"]
    qr = (await http.get(f"/v1/customers/{code}/qr", headers=org.headers)).json()["payload"]
    found = await loyalite.lookup_by_qr(qr)
    assert set(found) == {"customer_code", "masked_email", "stamp_count", "point_balance"}
    assert found["customer_code"] == code
    balance = await loyalite.process_qr_scan(qr, "scan-1")
    assert balance == {"stamps": 1, "points": 0}
    clock.advance(hours=24)
    with pytest.raises(LoyaliteError, match="Invalid or expired QR code"):
        await loyalite.lookup_by_qr(qr)


@pytest.mark.parametrize("preset", ["standard", "balanced", "strict"])
async def test_full_checkout_flow(
    loyalite: Loyalite, phone: Customer, org: Tenant, engine: AsyncEngine, preset: str
) -> None:
    await configure_org(engine, org_id=org.org_id, preset=preset)
    email = _email()
    cashier = Cashier(phone)

    async def prompt(remaining: int, challenge_id: str) -> str:
        phone.code = customer_code
        return await cashier(remaining, challenge_id)

    customer_code = (await loyalite.enroll_customer(email))["customer_code"]
    customer, balance = await loyalite.checkout(
        email=email, order_total=42.0, order_id="co-1", prompt=prompt
    )
    assert customer["is_new"] is False and balance == {"stamps": 0, "points": 42}
    customer, balance = await loyalite.checkout(
        email=email, order_total=10.0, order_id="co-2", points_to_redeem=30, prompt=prompt
    )
    assert customer["point_balance"] == 42
    assert balance == {"stamps": 0, "points": 22}  # 42 - 30 redeemed + 10 earned on the total
    expected_prompts = {"standard": 0, "balanced": 1, "strict": 3}[preset]
    assert len(cashier.prompts) == expected_prompts
