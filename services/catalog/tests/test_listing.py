"""Listings: search, filters, sorts, keyset pagination and the cache, on an isolated catalog."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from shopkit.testing import eventually

from contracts import new_id

from .conftest import Running, running_catalog
from .factories import create_category, create_product


@pytest.fixture(scope="module")
async def shop() -> AsyncIterator[dict[str, Any]]:
    """A small catalog of its own: listings see exactly these products."""
    async with running_catalog() as service:
        eletro = await create_category(service, "Eletrônicos")
        audio = await create_category(service, "Áudio", parent_id=eletro["id"])
        fones = await create_category(service, "Fones", parent_id=audio["id"])
        casa = await create_category(service, "Casa")
        items = [
            ("Fone de Ouvido Bluetooth JBL Tune", 27900, fones, {"brand": "JBL", "color": "Preto"}),
            ("Fone de Ouvido Sony Sem Fio", 219900, fones, {"brand": "Sony", "color": "Prata"}),
            ("Caixa de Som JBL Flip", 59900, audio, {"brand": "JBL", "color": "Azul"}),
            (
                "Smart TV Samsung 50 polegadas",
                249900,
                eletro,
                {"brand": "Samsung", "screen_inches": 50},
            ),
            ("Cafeteira Elétrica Oster", 19900, casa, {"brand": "Oster", "voltage": "127V"}),
            ("Liquidificador Oster Xtreme", 29900, casa, {"brand": "Oster", "voltage": "220V"}),
            ("Camiseta Básica Algodão", 4990, None, {"brand": "Hering", "size": "M"}),
        ]
        products = []
        for name, price, category, attributes in items:
            products.append(
                await create_product(
                    service,
                    name=name,
                    price=price,
                    attributes=attributes,
                    category_ids=[category["id"]] if category else [],
                    description="Produto de demonstração.",
                )
            )
        inactive = await create_product(
            service, name="Fone Antigo Descontinuado", price=1000, category_ids=[fones["id"]]
        )
        await service.client.delete(f"/api/products/{inactive['id']}", headers=service.admin())
        yield {
            "service": service,
            "products": products,
            "inactive": inactive,
            "categories": {"eletro": eletro, "audio": audio, "fones": fones, "casa": casa},
        }


@pytest.fixture(scope="module")
async def busy() -> AsyncIterator[Running]:
    """A catalog where products keep arriving (its own, so `shop` listings stay exact)."""
    async with running_catalog() as service:
        yield service


def _cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


async def names(service: Running, **params: Any) -> list[str]:
    response = await service.client.get("/api/products", params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def test_search_finds_words_prefixes_and_ignores_accents(shop: dict[str, Any]) -> None:
    service = shop["service"]
    assert set(await names(service, q="fone")) == {
        "Fone de Ouvido Bluetooth JBL Tune",
        "Fone de Ouvido Sony Sem Fio",
    }
    assert await names(service, q="cafeteira eletrica") == ["Cafeteira Elétrica Oster"]
    assert await names(service, q="LIQUIDIF") == ["Liquidificador Oster Xtreme"]
    assert set(await names(service, q="jbl")) == {
        "Fone de Ouvido Bluetooth JBL Tune",
        "Caixa de Som JBL Flip",
    }
    assert await names(service, q="jbl fone") == ["Fone de Ouvido Bluetooth JBL Tune"]
    assert await names(service, q="geladeira") == []
    # Category names are searchable too.
    assert "Caixa de Som JBL Flip" in await names(service, q="audio")


async def test_relevance_puts_name_matches_first(shop: dict[str, Any]) -> None:
    service = shop["service"]
    response = await service.client.get("/api/products", params={"q": "oster"})
    ranked = [item["name"] for item in response.json()["items"]]
    assert set(ranked) == {"Cafeteira Elétrica Oster", "Liquidificador Oster Xtreme"}
    # "som" is a whole word of one name and only a description-free prefix elsewhere.
    assert (await names(service, q="som"))[0] == "Caixa de Som JBL Flip"


async def test_filters_combine(shop: dict[str, Any]) -> None:
    service, categories = shop["service"], shop["categories"]
    in_eletro = await names(service, category=categories["eletro"]["slug"])
    assert set(in_eletro) == {  # descendants included, the deleted product not
        "Fone de Ouvido Bluetooth JBL Tune",
        "Fone de Ouvido Sony Sem Fio",
        "Caixa de Som JBL Flip",
        "Smart TV Samsung 50 polegadas",
    }
    assert set(await names(service, category=categories["audio"]["id"])) == {
        "Fone de Ouvido Bluetooth JBL Tune",
        "Fone de Ouvido Sony Sem Fio",
        "Caixa de Som JBL Flip",
    }
    assert set(await names(service, min_price=20000, max_price=60000)) == {
        "Fone de Ouvido Bluetooth JBL Tune",
        "Caixa de Som JBL Flip",
        "Liquidificador Oster Xtreme",
    }
    assert set(await names(service, **{"attr.brand": "JBL", "max_price": 30000})) == {
        "Fone de Ouvido Bluetooth JBL Tune",
    }
    assert await names(service, **{"attr.screen_inches": "50"}) == ["Smart TV Samsung 50 polegadas"]
    assert await names(service, **{"attr.voltage": "220V", "q": "oster"}) == [
        "Liquidificador Oster Xtreme",
    ]
    # Values that spell numbers the database cannot hold match as text only (a 500 and a 503
    # before: an integer past 8 bytes, NaN, infinity).
    for odd in ("99999999999999999999", "-99999999999999999999", "nan", "inf", "-Infinity"):
        assert await names(service, **{"attr.screen_inches": odd}) == [], odd
        assert await names(service, **{"attr.brand": odd}) == [], odd


async def test_sorts_and_totals(shop: dict[str, Any]) -> None:
    service = shop["service"]
    prices = [p["price"] for p in shop["products"]]
    body = (await service.client.get("/api/products", params={"sort": "price_asc"})).json()
    assert [i["price"] for i in body["items"]] == sorted(prices)
    assert body["total"] == len(prices)
    body = (await service.client.get("/api/products", params={"sort": "price_desc"})).json()
    assert [i["price"] for i in body["items"]] == sorted(prices, reverse=True)
    newest = (await service.client.get("/api/products")).json()["items"]
    assert [i["id"] for i in newest] == sorted((p["id"] for p in shop["products"]), reverse=True)
    as_admin = await service.client.get("/api/products", headers=service.admin())
    assert as_admin.json()["total"] == len(prices) + 1  # admins also see the deleted product


async def test_bad_listing_input_is_422_and_what_names_nothing_is_404(
    shop: dict[str, Any],
) -> None:
    service = shop["service"]
    for params in (  # refused by the documented schema
        {"sort": "popularity"},
        {"colour": "red"},
        {"attr.weight": "1"},
        {"attr.Brand": "x"},
        {"min_price": "-1"},
        {"min_price": "9.99"},
        {"limit": "0"},
        {"limit": "101"},
        {"category": "Not A Slug"},
        {"cursor": "!!!not-base64!!!"},
    ):
        response = await service.client.get("/api/products", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    for params in (  # well-formed, but no such category or page
        {"category": "no-such-category"},
        {"cursor": "eyJzIjoibmV3ZXN0In0"},
        {"cursor": _cursor({"s": "price_asc", "f": "x", "k": 10**30, "id": "a"})},
    ):
        response = await service.client.get("/api/products", params=params)
        assert response.status_code == 404, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    empty = await service.client.get("/api/products", params={"min_price": 500, "max_price": 100})
    assert empty.status_code == 200
    assert empty.json() == {"items": [], "next_cursor": None, "total": 0}


async def test_a_cursor_only_continues_its_own_listing(shop: dict[str, Any]) -> None:
    service = shop["service"]
    first = (await service.client.get("/api/products", params={"limit": 2})).json()
    assert first["next_cursor"]
    other = await service.client.get(
        "/api/products",
        params={
            "limit": 2,
            "sort": "price_asc",
            "cursor": first["next_cursor"],
        },
    )
    assert other.status_code == 404
    filtered = await service.client.get(
        "/api/products",
        params={
            "limit": 2,
            "q": "fone",
            "cursor": first["next_cursor"],
        },
    )
    assert filtered.status_code == 404


@pytest.mark.parametrize(
    "forged",
    [
        {"k": float("nan")},  # Python's JSON reads NaN; the store refused it (was a 503)
        {"id": "\ud800"},  # a lone surrogate no driver can encode (was a 500)
        {"id": "a\x00b"},  # not a product id
        {"k": "10"},
        {"k": True},
    ],
)
async def test_a_forged_cursor_is_refused(shop: dict[str, Any], forged: dict[str, Any]) -> None:
    service = shop["service"]
    params = {"limit": 1, "sort": "price_asc"}
    issued = (await service.client.get("/api/products", params=params)).json()["next_cursor"]
    payload = {**json.loads(base64.urlsafe_b64decode(issued)), **forged}
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    response = await service.client.get("/api/products", params={**params, "cursor": cursor})
    assert response.status_code == 404, response.text
    assert response.json()["type"].endswith("/invalid-cursor")


@pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc", "relevance", "rating"])
async def test_pages_never_repeat_or_skip_while_products_are_inserted(
    busy: Running, sort: str
) -> None:
    service = busy
    token = f"lote{new_id()[-8:]}"  # a word only this test's products contain
    originals = [
        await create_product(service, name=f"Garrafa {token} {i:02d}", price=1000 + (i % 4) * 500)
        for i in range(10)
    ]
    seen: list[str] = []
    cursor: str | None = None
    inserted = 0
    for _ in range(30):  # 10 originals in pages of 3, plus arrivals: far fewer pages than this
        params: dict[str, Any] = {"limit": 3, "sort": sort, "q": token}
        if cursor:
            params["cursor"] = cursor
        page = (await service.client.get("/api/products", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        # Between pages, more matching products arrive, some with the same prices.
        await asyncio.gather(
            *(
                create_product(
                    service,
                    name=f"Garrafa {token} nova {inserted + k}",
                    price=1000 + ((inserted + k) % 4) * 500,
                )
                for k in range(2)
            )
        )
        inserted += 2
        cursor = page["next_cursor"]
        if cursor is None:
            break
    else:
        raise AssertionError("pagination never ended")
    assert len(seen) == len(set(seen)), "a product was listed twice"
    assert {p["id"] for p in originals} <= set(seen), "a product was skipped"


async def test_no_stale_price_after_an_update(shop: dict[str, Any]) -> None:
    service = shop["service"]
    product = shop["products"][0]
    params = {"q": "tune"}
    # Warm every cached view of the product.
    listed = (await service.client.get("/api/products", params=params)).json()["items"][0]
    page = (await service.client.get(f"/api/products/{product['slug']}")).json()
    assert listed["price"] == page["price"] == product["price"]
    again = (await service.client.get(f"/api/products/{product['slug']}")).json()
    assert again == page  # served from the cache
    new_price = product["price"] + 1000
    response = await service.client.patch(
        f"/api/products/{product['id']}", json={"price": new_price}, headers=service.admin()
    )
    assert response.status_code == 200
    assert (await service.client.get(f"/api/products/{product['slug']}")).json()[
        "price"
    ] == new_price
    assert (await service.client.get(f"/api/products/{product['id']}")).json()["price"] == new_price
    listed = (await service.client.get("/api/products", params=params)).json()["items"][0]
    assert listed["price"] == new_price
    await service.client.patch(
        f"/api/products/{product['id']}", json={"price": product["price"]}, headers=service.admin()
    )


async def test_public_reads_may_be_shared_at_the_edge_and_every_write_purges_them(
    shop: dict[str, Any],
) -> None:
    service: Running = shop["service"]
    product = shop["products"][1]
    public_reads = [
        "/api/products?q=sony",
        f"/api/products/{product['slug']}",
        "/api/products/categories",
    ]
    customer = service.tokens.headers()
    for path in public_reads:
        for headers in ({}, customer):
            response = await service.client.get(path, headers=headers)
            assert response.status_code == 200
            assert response.headers["surrogate-control"] == "max-age=60"
            assert response.headers["surrogate-key"] == "catalog"
    for path in public_reads[:2]:
        # An admin also sees inactive products: that answer is the admin's alone.
        admin_view = await service.client.get(path, headers=service.admin())
        assert "surrogate-control" not in admin_view.headers
    missing = await service.client.get(f"/api/products/{new_id()}")
    assert missing.status_code == 404
    assert "surrogate-control" not in missing.headers

    redis = Redis.from_url(service.settings.redis_url)
    channel = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await channel.subscribe(service.settings.edge_purge_channel)
        response = await service.client.patch(
            f"/api/products/{product['id']}",
            json={"description": "Purged at the edge."},
            headers=service.admin(),
        )
        assert response.status_code == 200
        # (get_message answers None also when it read the subscription's confirmation)
        message = await eventually(lambda: channel.get_message(timeout=1), timeout=5, interval=0)
        assert message["data"] == b"catalog"
    finally:
        await channel.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()


async def test_categories_come_back_as_a_tree(shop: dict[str, Any]) -> None:
    service, categories = shop["service"], shop["categories"]
    tree = (await service.client.get("/api/products/categories")).json()["items"]
    by_id = {node["id"]: node for node in tree}
    eletro = by_id[categories["eletro"]["id"]]
    assert [c["id"] for c in eletro["children"]] == [categories["audio"]["id"]]
    assert [c["id"] for c in eletro["children"][0]["children"]] == [categories["fones"]["id"]]
    assert eletro["children"][0]["children"][0]["path"] == (
        f"/{categories['eletro']['slug']}/{categories['audio']['slug']}/{categories['fones']['slug']}"
    )
    assert categories["casa"]["id"] in by_id
    duplicate = await service.client.post(
        "/api/products/categories",
        json={"name": "x", "slug": categories["casa"]["slug"]},
        headers=service.admin(),
    )
    assert duplicate.status_code == 409
    orphan = await service.client.post(
        "/api/products/categories",
        json={"name": "Órfã", "parent_id": "nope"},
        headers=service.admin(),
    )
    assert orphan.status_code == 422
    unknown_parent = await service.client.post(
        "/api/products/categories",
        json={"name": "Órfã", "parent_id": new_id()},
        headers=service.admin(),
    )
    assert unknown_parent.status_code == 404
    assert unknown_parent.json()["type"].endswith("/unknown-category")
