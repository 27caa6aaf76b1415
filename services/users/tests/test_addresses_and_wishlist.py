"""Address book (CEP rules, one default, BOLA) and wishlist (catalog projection, BOLA)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from contracts.events.catalog import ProductCreated, ProductDeactivated
from shopkit.testing import eventually, publish

from contracts import new_id

from .conftest import ADDRESS, Running

PROBLEM = "application/problem+json"


async def _add(users: Running, user_id: str, **overrides: Any) -> Any:
    return await users.client.post(
        "/api/users/me/addresses", headers=users.headers(user_id), json={**ADDRESS, **overrides}
    )


async def test_addresses_keep_exactly_one_default(users: Running) -> None:
    user_id = await users.new_user()
    first = (await _add(users, user_id)).json()
    assert first["is_default"] is True  # the first address is the default
    assert first["cep"] == "01310100"
    second = (
        await _add(
            users,
            user_id,
            label="Trabalho",
            cep="20040-002",
            state="RJ",
            city="Rio de Janeiro",
            is_default=True,
        )
    ).json()
    listed = (
        await users.client.get("/api/users/me/addresses", headers=users.headers(user_id))
    ).json()["items"]
    assert [(a["id"], a["is_default"]) for a in listed] == [
        (second["id"], True),
        (first["id"], False),
    ]
    back = await users.client.patch(
        f"/api/users/me/addresses/{first['id']}",
        headers=users.headers(user_id),
        json={"is_default": True},
    )
    assert back.json()["is_default"] is True
    deleted = await users.client.delete(
        f"/api/users/me/addresses/{first['id']}", headers=users.headers(user_id)
    )
    assert deleted.status_code == 204
    remaining = (
        await users.client.get("/api/users/me/addresses", headers=users.headers(user_id))
    ).json()["items"]
    assert [(a["id"], a["is_default"]) for a in remaining] == [(second["id"], True)]


async def test_address_book_has_a_limit(users: Running) -> None:
    user_id = await users.new_user()
    for _ in range(users.settings.max_addresses):
        assert (await _add(users, user_id)).status_code == 201
    full = await _add(users, user_id)
    assert full.status_code == 409
    assert full.json()["type"].endswith("too-many-addresses")


@pytest.mark.parametrize(
    ("overrides", "slug"),
    [
        # The CEP pattern in the schema is the Correios allocation itself.
        ({"cep": "123"}, "validation-error"),
        ({"cep": "00000-000"}, "validation-error"),
        ({"cep": "0131O-100"}, "validation-error"),
        ({"cep": " 01310-100"}, "validation-error"),
        ({"cep": "20040-002"}, "cep-state-mismatch"),  # an RJ CEP on an SP address
        ({"state": "XX"}, "validation-error"),
        ({"state": "sp"}, "validation-error"),
        ({"country": "AR"}, "validation-error"),
        ({"recipient": ""}, "validation-error"),
        ({"owner_id": "someone"}, "validation-error"),
    ],
)
async def test_address_validation(users: Running, overrides: dict[str, str], slug: str) -> None:
    user_id = await users.new_user()
    response = await _add(users, user_id, **overrides)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith(slug)
    listed = await users.client.get("/api/users/me/addresses", headers=users.headers(user_id))
    assert listed.json()["items"] == []
    patched_cep = {"cep": "20040002"}
    if slug == "cep-state-mismatch":
        return
    good = (await _add(users, user_id)).json()
    mismatch = await users.client.patch(
        f"/api/users/me/addresses/{good['id']}", headers=users.headers(user_id), json=patched_cep
    )
    # Well-formed, but it disagrees with the state the address already has.
    assert mismatch.status_code == 409
    assert mismatch.json()["type"].endswith("cep-state-mismatch")


async def test_another_users_address_is_invisible_and_untouchable(users: Running) -> None:
    owner, intruder = await users.new_user(), await users.new_user()
    address = (await _add(users, owner)).json()
    url = f"/api/users/me/addresses/{address['id']}"
    as_intruder = users.headers(intruder)
    assert (await users.client.get(url, headers=as_intruder)).status_code == 404
    patched = await users.client.patch(url, headers=as_intruder, json={"street": "Rua Hacker"})
    assert patched.status_code == 404
    assert (await users.client.delete(url, headers=as_intruder)).status_code == 404
    mine = await users.client.get(url, headers=users.headers(owner))
    assert mine.status_code == 200
    assert mine.json()["street"] == ADDRESS["street"]
    intruder_book = await users.client.get("/api/users/me/addresses", headers=as_intruder)
    assert intruder_book.json()["items"] == []


def _product(*, active: bool = True, price: int = 12990) -> ProductCreated:
    sku = f"W-{secrets.token_hex(4)}"
    return ProductCreated(
        product_id=new_id(),
        sku=sku,
        name=f"Produto {sku}",
        slug=sku.lower(),
        price=price,
        currency="BRL",
        is_active=active,
        version=1,
        occurred_at=datetime.now(UTC),
    )


async def _projected(users: Running, user_id: str, product_id: str) -> None:
    async def added() -> bool:
        response = await users.client.post(
            "/api/users/me/wishlist",
            headers=users.headers(user_id),
            json={"product_id": product_id},
        )
        return response.status_code == 201

    await eventually(added, timeout=30, interval=0.3)


async def test_wishlist_is_validated_against_the_catalog_and_private(users: Running) -> None:
    owner, other = await users.new_user(), await users.new_user()
    book, hidden, retired = _product(), _product(active=False), _product()
    ns = users.settings.kafka_namespace
    await publish(
        ns,
        book,
        hidden,
        retired,
        ProductDeactivated(
            product_id=retired.product_id, sku=retired.sku, version=2, occurred_at=datetime.now(UTC)
        ),
    )
    await _projected(users, owner, book.product_id)
    await _projected(users, other, book.product_id)

    for product_id in (hidden.product_id, retired.product_id, new_id()):
        refused = await users.client.post(
            "/api/users/me/wishlist", headers=users.headers(owner), json={"product_id": product_id}
        )
        assert refused.status_code == 404
        assert refused.json()["type"].endswith("unknown-product")
    again = await users.client.post(
        "/api/users/me/wishlist", headers=users.headers(owner), json={"product_id": book.product_id}
    )
    assert [i["product_id"] for i in again.json()["items"]] == [book.product_id]

    # The other user removing "their" copy leaves the owner's list alone.
    await users.client.delete(
        f"/api/users/me/wishlist/{book.product_id}", headers=users.headers(other)
    )
    owners = (
        await users.client.get("/api/users/me/wishlist", headers=users.headers(owner))
    ).json()["items"]
    others = (
        await users.client.get("/api/users/me/wishlist", headers=users.headers(other))
    ).json()["items"]
    assert [(i["product_id"], i["sku"], i["price"]) for i in owners] == [
        (book.product_id, book.sku, 12990)
    ]
    assert others == []


async def test_a_price_beyond_32_bits_is_projected(users: Running) -> None:
    """Prices have no upper bound in the contract; the projection must not park such a product
    in the dead-letter topic (R$ 99,999,999.99 did once)."""
    user_id = await users.new_user()
    yacht = _product(price=9_999_999_999)
    await publish(users.settings.kafka_namespace, yacht)
    await _projected(users, user_id, yacht.product_id)
    items = (
        await users.client.get("/api/users/me/wishlist", headers=users.headers(user_id))
    ).json()["items"]
    assert [(i["product_id"], i["price"]) for i in items] == [(yacht.product_id, 9_999_999_999)]
