"""Forged page cursors are refused with a 4xx problem, never a 5xx.

An opaque cursor (base64 of what the service put in it) comes back from the client, so what it
decodes to is attacker-controlled: a NUL that PostgreSQL text refuses, a lone surrogate no
driver can encode, NaN, an instant that overflows on its way to UTC. Each of those once reached
a query and answered 500 (or 503). The operations are found in the merged OpenAPI document: every
listing whose cursor is opaque, so a new one is covered without touching this test.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
from shop_cli.client import Session

from contracts import new_id

from .conftest import Product

HOSTILE_TEXT = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "\uffff",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-01-31T12:00:00",
    "NaN",
    "-1",
    "9" * 300,
    "'; DROP TABLE orders; --",
    # Spellings uuid.UUID() accepts and the database driver does not
    "{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}",
    "urn:uuid:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "0190-a1b2-c3d4-7e5f-8a9b-0c1d-2e3f-4a5b",
    "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",
]
HOSTILE_JSON: list[Any] = [
    float("nan"),
    float("inf"),
    1e308,
    -(2**63),
    2**64,
    "",
    "\ud800",
    "\x00",
    [],
    {},
    None,
    True,
    "x" * 400,
]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _forgeries(issued: str | None) -> Iterator[str]:
    """Cursors no service issued: random bytes, '|'-joined parts, and, from a cursor a service
    did issue, the same cursor with each of its fields replaced by a hostile value."""
    rng = random.Random(20261206)
    for _ in range(40):
        yield _b64(rng.randbytes(rng.randrange(1, 48)))
    for parts in (1, 2, 3):
        for value in HOSTILE_TEXT:
            yield _b64(_text("|".join([value] + [new_id()] * (parts - 1))))
            yield _b64(_text("|".join([new_id()] * (parts - 1) + [value])))
    if issued is None:
        return
    decoded = base64.urlsafe_b64decode(issued + "=" * (-len(issued) % 4))
    try:
        payload = json.loads(decoded)
    except ValueError:
        parts_issued = decoded.decode().split("|")
        for index in range(len(parts_issued)):
            for value in HOSTILE_TEXT:
                forged = [*parts_issued[:index], value, *parts_issued[index + 1 :]]
                yield _b64(_text("|".join(forged)))
        return
    if isinstance(payload, dict):
        for key in payload:
            for value in HOSTILE_JSON:
                yield _b64(json.dumps({**payload, key: value}).encode())


def _opaque_cursor_listings(schema: dict[str, Any]) -> list[str]:
    found = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        for parameter in get.get("parameters", []):
            cursor = parameter["schema"] if parameter["name"] == "cursor" else None
            # Cursors that are plain ids or skus are refused by their pattern before any query.
            if cursor and "format" not in cursor and "=" in cursor.get("pattern", ""):
                found.append(path)
    return found


async def _issued_cursor(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> str | None:
    response = await http.get(path, params={"limit": 1}, headers=headers)
    assert response.status_code == 200, (path, response.text)
    cursor = response.json().get("next_cursor")
    return cursor if isinstance(cursor, str) else None


async def test_forged_cursors_are_a_4xx_problem_never_a_5xx(
    http: httpx.AsyncClient, admin: Session, customer: Session, product: Product
) -> None:
    # Second pages to forge from: two coupons, and a second product for the catalog listing.
    for _ in range(2):
        code = f"CUR{secrets.token_hex(4).upper()}"
        await admin.post("/api/coupons", {"code": code, "kind": "fixed", "amount_off": 100})
    await admin.post(
        "/api/products",
        {
            "sku": f"CUR-{secrets.token_hex(4).upper()}",
            "name": "Cursor item",
            "price": 990,
            "currency": "BRL",
            "weight_grams": 100,
        },
    )
    schema = (await http.get("/openapi.json")).json()
    listings = _opaque_cursor_listings(schema)
    assert {"/api/coupons", "/api/orders", "/api/products"} <= set(listings), listings

    as_admin = {"Authorization": f"Bearer {admin.access_token}"}
    as_customer = {"Authorization": f"Bearer {customer.access_token}"}
    failures: list[str] = []
    forged_count = 0
    for template in listings:
        path = template.replace("{id_or_slug}", product.id)
        headers = as_admin if "/admin" in path or path.startswith("/api/coupons") else as_customer
        issued = await _issued_cursor(http, path, headers)
        for cursor in _forgeries(issued):
            forged_count += 1
            response = await http.get(path, params={"cursor": cursor}, headers=headers)
            problem = response.headers.get("content-type", "").startswith(
                "application/problem+json"
            )
            if response.status_code >= 500 or (response.status_code >= 400 and not problem):
                failures.append(f"{path} cursor={cursor}: {response.status_code} {response.text}")
    assert forged_count > 6 * 100
    assert not failures, "\n".join(failures[:20])
