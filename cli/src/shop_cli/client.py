"""A client of the public API, through the gateway only, as a storefront would use it.

One piece of code drives the demo (`shop demo`), the end-to-end tests, the chaos load and the
checkout benchmark.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

GATEWAY = os.environ.get("SHOP_GATEWAY_URL", "http://127.0.0.1:8000")
STRIPE = os.environ.get("SHOP_STRIPE_URL", "http://127.0.0.1:8420")
ROOT = Path(__file__).resolve().parents[3]

DEMO_ADDRESS: dict[str, str] = {
    "recipient": "Ana Souza",
    "street": "Avenida Paulista",
    "number": "1578",
    "complement": "Conjunto 42",
    "district": "Bela Vista",
    "city": "São Paulo",
    "state": "SP",
    "cep": "01310200",
    "country": "BR",
}

GOOD_CARD = "pm_card_visa"
DECLINED_CARD = "pm_card_chargeDeclined"
THREE_DS_CARD = "pm_card_threeDSecure2Required"

TERMINAL = {"DELIVERED", "CANCELLED", "REFUNDED"}


class ApiError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.body: dict[str, Any] = response.json()
        except ValueError:
            self.body = {"detail": response.text[:500]}
        super().__init__(
            f"{response.request.method} {response.request.url.path} -> "
            f"{self.status}: {self.body.get('detail', self.body)}"
        )


def _json(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise ApiError(response)
    return response.json() if response.content else None


def unique_email(prefix: str = "shopper") -> str:
    return f"{prefix}-{int(time.time())}-{secrets.token_hex(4)}@example.com"


def create_admin(email: str, password: str) -> None:
    """`shop admin create`: the only way to make an administrator."""
    result = subprocess.run(  # noqa: S603 - our own CLI, arguments passed as a list
        [
            sys.executable,
            "-m",
            "shop_cli.main",
            "admin",
            "create",
            "--email",
            email,
            "--password",
            password,
            "--name",
            "Shop Admin",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"shop admin create failed: {result.stderr or result.stdout}")


@dataclass
class Session:
    """A logged-in user talking to the gateway."""

    http: httpx.AsyncClient
    user_id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    async def get(self, path: str, **params: Any) -> Any:
        return _json(await self.http.get(path, headers=self.headers, params=params or None))

    async def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return _json(
            await self.http.post(path, json=body, headers={**self.headers, **(headers or {})})
        )

    async def put(self, path: str, body: Any) -> Any:
        return _json(await self.http.put(path, json=body, headers=self.headers))

    async def patch(self, path: str, body: Any) -> Any:
        return _json(await self.http.patch(path, json=body, headers=self.headers))

    async def delete(self, path: str) -> Any:
        return _json(await self.http.delete(path, headers=self.headers))

    # ------------------------------------------------------------ catalog and stock (admin)

    async def seed_catalog(self) -> Any:
        return await self.post("/api/products/seed")

    async def products(self, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.get(
                "/api/products",
                limit=min(limit - len(items), 100),
                **({"cursor": cursor} if cursor else {}),
                **filters,
            )
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor or len(items) >= limit:
                return items

    async def set_stock(self, sku: str, on_hand: int, reason: str = "demo seed") -> Any:
        return await self.put(f"/api/inventory/{sku}", {"on_hand": on_hand, "reason": reason})

    async def create_coupon(self, code: str, percent_off: int, **rules: Any) -> Any:
        return await self.post(
            "/api/coupons",
            {"code": code, "kind": "percentage", "percent_off": percent_off, **rules},
        )

    # ------------------------------------------------------------ shopping

    async def add_to_cart(self, sku: str, quantity: int) -> Any:
        return await self.post("/api/cart/items", {"sku": sku, "quantity": quantity})

    async def apply_coupon(self, code: str) -> Any:
        return await self.post("/api/cart/coupon", {"code": code})

    async def cart(self) -> Any:
        return await self.get("/api/cart")

    async def quote(self, items: list[dict[str, Any]], cep: str = DEMO_ADDRESS["cep"]) -> Any:
        return await self.post("/api/shipping/quotes", {"destination_cep": cep, "items": items})

    async def checkout(
        self,
        quote_id: str,
        payment_method_id: str,
        address: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        return await self.post(
            "/api/orders",
            {
                "shipping_address": address or DEMO_ADDRESS,
                "shipping_quote_id": quote_id,
                "payment_method_id": payment_method_id,
            },
            headers={"Idempotency-Key": idempotency_key or secrets.token_hex(16)},
        )

    async def buy(
        self,
        lines: list[tuple[str, int]],
        payment_method_id: str = GOOD_CARD,
        coupon: str | None = None,
    ) -> dict[str, Any]:
        """Cart -> (coupon) -> cheapest quote -> checkout; returns the accepted order."""
        for sku, quantity in lines:
            await self.add_to_cart(sku, quantity)
        if coupon:
            await self.apply_coupon(coupon)
        quote = await self.quote([{"sku": s, "quantity": q} for s, q in lines])
        cheapest = min(quote["options"], key=lambda o: o["price"])
        order: dict[str, Any] = await self.checkout(cheapest["quote_id"], payment_method_id)
        return order

    async def order(self, order_id: str) -> Any:
        return await self.get(f"/api/orders/{order_id}")

    async def timeline(self, order_id: str) -> Any:
        return await self.get(f"/api/orders/{order_id}/timeline")

    async def cancel(self, order_id: str) -> Any:
        return await self.post(f"/api/orders/{order_id}/cancel", {"reason": "changed my mind"})

    async def wait_for(
        self, order_id: str, statuses: set[str], timeout: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        order: dict[str, Any] = {}
        while time.monotonic() < deadline:
            order = await self.order(order_id)
            if order["status"] in statuses:
                return order
            await asyncio.sleep(0.2)
        raise TimeoutError(
            f"order {order_id} is {order.get('status')}, expected {sorted(statuses)}"
        )

    async def complete_3ds(self, order: dict[str, Any], success: bool = True) -> None:
        """What the storefront's Stripe.js does with `next_action` (localstripe's stand-in)."""
        client_secret = order["payment"]["next_action"]["client_secret"]
        intent_id = client_secret.split("_secret_")[0]
        async with httpx.AsyncClient(base_url=STRIPE, timeout=10) as stripe:
            response = await stripe.post(
                f"/v1/payment_intents/{intent_id}/_authenticate",
                data={
                    "key": "pk_test_local",
                    "client_secret": client_secret,
                    "success": "true" if success else "false",
                },
            )
            response.raise_for_status()


async def register(http: httpx.AsyncClient, email: str, password: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = _json(
        await http.post(
            "/api/auth/register", json={"email": email, "password": password, "name": name}
        )
    )
    return result


async def login(http: httpx.AsyncClient, email: str, password: str) -> Session:
    tokens = _json(await http.post("/api/auth/login", json={"email": email, "password": password}))
    me = _json(
        await http.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    )
    return Session(
        http=http,
        user_id=me["id"],
        email=email,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


async def new_customer(http: httpx.AsyncClient, name: str = "Ana Souza") -> Session:
    email = unique_email()
    password = f"Pw-{secrets.token_hex(8)}"
    await register(http, email, password, name)
    return await login(http, email, password)


async def new_admin(http: httpx.AsyncClient) -> Session:
    email = unique_email("admin")
    password = f"Admin-{secrets.token_hex(8)}"
    await asyncio.to_thread(create_admin, email, password)
    return await login(http, email, password)


def gateway_client(timeout: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=GATEWAY,
        timeout=timeout,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
    )
