"""Mass assignment: a field the API does not take is a 422, never silently applied or ignored.

Roles in particular can only be granted by `shop admin create`; no request body can carry
them, on registration or on any profile.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import jwt
from shop_cli.client import DEMO_ADDRESS, Session, login, register, unique_email

from contracts import new_id

from .conftest import Product

PRIVILEGE_FIELDS: list[dict[str, Any]] = [
    {"roles": ["customer", "admin"]},
    {"roles": ["admin"]},
    {"is_admin": True},
    {"admin": True},
    {"role": "admin"},
    {"id": new_id()},
    {"user_id": new_id()},
    {"mfa_enabled": True},
    {"email_verified": True},
]


def _refused(response: httpx.Response, what: object) -> None:
    assert response.status_code == 422, (what, response.text)
    assert response.headers["content-type"] == "application/problem+json"


async def test_registration_cannot_choose_roles_or_ids(http: httpx.AsyncClient) -> None:
    password = f"Pw-{secrets.token_hex(8)}"
    for extra in PRIVILEGE_FIELDS:
        email = unique_email("massassign")
        body = {"email": email, "password": password, "name": "Mallory", **extra}
        _refused(await http.post("/api/auth/register", json=body), extra)
        refused_login = await http.post(
            "/api/auth/login", json={"email": email, "password": password}
        )
        assert refused_login.status_code == 401, "no account may have been created"


async def test_profiles_cannot_take_roles_or_identity(http: httpx.AsyncClient) -> None:
    email, password = unique_email("massassign"), f"Pw-{secrets.token_hex(8)}"
    await register(http, email, password, "Mallory")
    customer = await login(http, email, password)
    for extra in [*PRIVILEGE_FIELDS, {"email": "someone-else@example.com"}]:
        _refused(
            await http.patch(
                "/api/auth/me", json={"name": "Mallory", **extra}, headers=customer.headers
            ),
            ("auth", extra),
        )
        _refused(
            await http.patch(
                "/api/users/me", json={"name": "Mallory", **extra}, headers=customer.headers
            ),
            ("users", extra),
        )
        _refused(
            await http.patch(
                "/api/users/me/preferences",
                json={"language": "en", **extra},
                headers=customer.headers,
            ),
            ("preferences", extra),
        )
    me = (await http.get("/api/auth/me", headers=customer.headers)).json()
    assert me["roles"] == ["customer"]
    assert me["email"] == customer.email
    fresh = await login(http, email, password)
    claims = jwt.decode(fresh.access_token, options={"verify_signature": False})
    assert claims["roles"] == ["customer"]
    assert claims["sub"] == customer.user_id


async def test_owned_records_cannot_be_given_an_owner_or_server_fields(
    http: httpx.AsyncClient, customer: Session, product: Product
) -> None:
    headers = customer.headers
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/users/me/addresses", {**DEMO_ADDRESS, "user_id": new_id()}),
        ("POST", "/api/users/me/addresses", {**DEMO_ADDRESS, "id": new_id()}),
        ("POST", "/api/cart/items", {"sku": product.sku, "quantity": 1, "unit_price": 1}),
        ("POST", "/api/cart/items", {"sku": product.sku, "quantity": 1, "price": 1}),
        ("POST", "/api/cart/coupon", {"code": "NOPE1", "discount": 100}),
        (
            "POST",
            f"/api/products/{product.id}/reviews",
            {"rating": 5, "text": "great", "verified_purchase": True},
        ),
        (
            "POST",
            f"/api/products/{product.id}/reviews",
            {"rating": 5, "text": "x", "user_id": new_id()},
        ),
    ]
    for field in ({"total": 1}, {"status": "CONFIRMED"}, {"user_id": new_id()}, {"discount": 9}):
        cases.append(
            (
                "POST",
                "/api/orders",
                {
                    "shipping_address": DEMO_ADDRESS,
                    "shipping_quote_id": "a.b",
                    "payment_method_id": "pm_card_visa",
                    **field,
                },
            )
        )
    for method, path, body in cases:
        response = await http.request(
            method, path, json=body, headers={**headers, "Idempotency-Key": new_id()}
        )
        _refused(response, (path, body))
    assert (await customer.cart())["items"] == []
    assert (await customer.get("/api/users/me/addresses"))["items"] == []


async def test_admin_bodies_do_not_take_server_fields_either(
    http: httpx.AsyncClient, admin: Session
) -> None:
    sku = f"SEC-MA-{secrets.token_hex(3).upper()}"
    base = {"sku": sku, "name": "Mass assignment", "price": 100, "weight_grams": 10}
    for extra in ({"id": new_id()}, {"version": 99}, {"rating": {"count": 9, "average": 5.0}}):
        _refused(
            await http.post("/api/products", json={**base, **extra}, headers=admin.headers), extra
        )
    stock = await http.get(f"/api/inventory/{sku}")
    assert stock.status_code == 404  # nothing was created by any of them
