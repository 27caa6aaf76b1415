"""Products over HTTP: writes, their events (through the document outbox), and bad input."""

from __future__ import annotations

import asyncio
import json
import random
import re

from catalog_service.schemas import RESERVED_SLUGS, SLUG_PATTERN
from contracts.events.catalog import (
    PriceChanged,
    ProductCreated,
    ProductDeactivated,
    ProductUpdated,
)
from shopkit.testing import wait_for_events

from contracts import new_id

from .conftest import Running
from .factories import create_category, create_product, product_body


async def test_create_then_read_by_id_and_by_slug(catalog: Running) -> None:
    category = await create_category(catalog, "Cozinha")
    created = await create_product(catalog, category_ids=[category["id"]], slug=None)
    assert created["slug"].startswith("cafeteira-italiana-moka-")
    assert created["version"] == 1
    assert created["rating"] == {"count": 0, "average": None}
    for key in (created["id"], created["slug"]):
        response = await catalog.client.get(f"/api/products/{key}")
        assert response.status_code == 200
        assert response.json() == created


async def test_every_write_is_announced_with_the_document_version(catalog: Running) -> None:
    created = await create_product(catalog)
    pid, admin = created["id"], catalog.admin()
    patched = await catalog.client.patch(
        f"/api/products/{pid}", json={"price": 14990}, headers=admin
    )
    assert patched.status_code == 200
    assert (patched.json()["price"], patched.json()["version"]) == (14990, 2)
    same = await catalog.client.patch(f"/api/products/{pid}", json={"price": 14990}, headers=admin)
    assert same.json()["version"] == 2  # nothing changed: no new version, no event
    replaced = await catalog.client.put(
        f"/api/products/{pid}",
        json={
            k: v
            for k, v in product_body(name="Moka Express 3 xícaras", price=9990).items()
            if k != "sku"
        },
        headers=admin,
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["name"], replaced.json()["version"]) == ("Moka Express 3 xícaras", 3)
    deleted = await catalog.client.delete(f"/api/products/{pid}", headers=admin)
    assert deleted.status_code == 204

    ns, mine = catalog.namespace, (lambda e: e.product_id == pid)
    assert [e.version for e in await wait_for_events(ns, ProductCreated, where=mine)] == [1]
    updates = await wait_for_events(ns, ProductUpdated, where=mine, count=3)
    assert [(e.version, e.price, e.is_active) for e in updates] == [
        (2, 14990, True),
        (3, 9990, True),
        (4, 9990, False),
    ]
    prices = await wait_for_events(ns, PriceChanged, where=mine, count=2)
    assert [(e.version, e.old_price, e.new_price) for e in prices] == [
        (2, 12990, 14990),
        (3, 14990, 9990),
    ]
    assert [e.version for e in await wait_for_events(ns, ProductDeactivated, where=mine)] == [4]
    assert all(e.weight_grams == 600 and e.currency == "BRL" for e in updates)


async def test_deleted_products_are_hidden_from_customers_but_not_from_admins(
    catalog: Running,
) -> None:
    created = await create_product(catalog)
    await catalog.client.delete(f"/api/products/{created['id']}", headers=catalog.admin())
    assert (await catalog.client.get(f"/api/products/{created['id']}")).status_code == 404
    as_customer = await catalog.client.get(
        f"/api/products/{created['slug']}", headers=catalog.tokens.headers()
    )
    assert as_customer.status_code == 404
    as_admin = await catalog.client.get(f"/api/products/{created['id']}", headers=catalog.admin())
    assert as_admin.status_code == 200
    assert as_admin.json()["is_active"] is False
    again = await catalog.client.delete(f"/api/products/{created['id']}", headers=catalog.admin())
    assert again.status_code == 204


async def test_concurrent_changes_to_one_product_lose_nothing(catalog: Running) -> None:
    created = await create_product(catalog)
    pid = created["id"]
    prices = [20000 + i for i in range(8)]
    responses = await asyncio.gather(
        *(
            catalog.client.patch(f"/api/products/{pid}", json={"price": p}, headers=catalog.admin())
            for p in prices
        )
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    versions = sorted(r.json()["version"] for r in responses)
    assert versions == list(range(2, 10))  # every write got its own version
    final = (await catalog.client.get(f"/api/products/{pid}", headers=catalog.admin())).json()
    assert final["version"] == 9
    by_version = {r.json()["version"]: r.json()["price"] for r in responses}
    assert final["price"] == by_version[9]
    updates = await wait_for_events(
        catalog.namespace, ProductUpdated, where=lambda e: e.product_id == pid, count=8
    )
    assert [e.version for e in updates] == list(range(2, 10))  # published in document order
    assert [e.price for e in updates] == [by_version[v] for v in range(2, 10)]


async def test_bad_input_is_a_problem_document(catalog: Running) -> None:
    existing = await create_product(catalog)
    admin = catalog.admin()
    cases = [
        (product_body(price=-1), 422),
        (product_body(price=10.5), 422),
        (product_body(price="100"), 422),
        (product_body(weight_grams=0), 422),
        (product_body(sku="has space"), 422),
        (product_body(currency="real"), 422),
        (product_body(slug="Not A Slug"), 422),
        (product_body(slug="categories"), 422),
        (product_body(attributes={"Bad Key": 1}), 422),
        (product_body(unknown_field=True), 422),
        (product_body(category_ids=["not-an-id"]), 422),
        (product_body(images=["ftp://example.com/x.png"]), 422),
        (product_body(sku=".hidden"), 422),
        (product_body(category_ids=[new_id()]), 404),
        (product_body(sku=existing["sku"]), 409),
        (product_body(slug=existing["slug"]), 409),
    ]
    for body, expected in cases:
        response = await catalog.client.post("/api/products", json=body, headers=admin)
        assert response.status_code == expected, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= response.json().keys()
    # JSON clients may send NaN (Python's json does); it is no attribute value.
    not_a_number = json.dumps(product_body(attributes={"ratio": "NAN"})).replace('"NAN"', "NaN")
    response = await catalog.client.post(
        "/api/products",
        content=not_a_number,
        headers={
            **admin,
            "content-type": "application/json",
        },
    )
    assert response.status_code == 422, response.text
    for key in ("not-a-product", "0190d3a0-0000-4000-8000-000000000000", new_id()):
        missing = await catalog.client.get(f"/api/products/{key}")
        assert missing.status_code == 404, key
        assert missing.headers["content-type"] == "application/problem+json"
    for key in ("%20", "x" * 300, "Upper-Case"):
        malformed = await catalog.client.get(f"/api/products/{key}")
        assert malformed.status_code == 422, key
        assert malformed.headers["content-type"] == "application/problem+json"
    for method, path, body, expected in (
        ("PATCH", "/api/products/not-an-id", {"price": 1}, 422),
        ("PATCH", f"/api/products/{new_id()}", {"price": 1}, 404),
        ("DELETE", "/api/products/123", None, 422),
        ("DELETE", f"/api/products/{new_id()}", None, 404),
    ):
        response = await catalog.client.request(method, path, json=body, headers=admin)
        assert response.status_code == expected, (method, path, response.text)
    bad_patches = [{"price": -5}, {"price": 1.5}, {"name": None}, {"sku": "NEW-SKU"}]
    for body in bad_patches:
        response = await catalog.client.patch(
            f"/api/products/{existing['id']}", json=body, headers=admin
        )
        assert response.status_code == 422, (body, response.text)
    assert (await catalog.client.post("/api/products", json=product_body())).status_code == 401
    customer = await catalog.client.post(
        "/api/products", json=product_body(), headers=catalog.tokens.headers()
    )
    assert customer.status_code == 403
    unchanged = (await catalog.client.get(f"/api/products/{existing['id']}")).json()
    assert unchanged == existing


async def test_long_descriptions_and_big_attributes_are_stored(catalog: Running) -> None:
    many_words = " ".join(f"palavra{i}diferente" for i in range(800))
    for description in ("0" * 5000, many_words[:5000]):
        created = await create_product(
            catalog,
            description=description,
            attributes={"tags": [f"{'x' * 99}{i}" for i in range(10)], "notes": "y" * 200},
        )
        page = await catalog.client.get(f"/api/products/{created['id']}")
        assert page.json()["description"] == description
    found = await catalog.client.get("/api/products", params={"q": "palavra7diferente"})
    assert [p["description"][:20] for p in found.json()["items"]] == [many_words[:20]]


def _incompressible(seed: int, count: int = 10, length: int = 100) -> list[str]:
    """`count` strings of `length` random CJK Extension B characters (4 UTF-8 bytes each)."""
    chars = random.Random(seed)
    return [
        "".join(chr(chars.randint(0x20000, 0x2A6DF)) for _ in range(length)) for _ in range(count)
    ]


async def test_a_long_list_attribute_is_stored_or_refused_never_a_server_error(
    catalog: Running,
) -> None:
    """The schema takes 10 strings of 100 characters for any attribute (about 4 KB here, and
    hardly compressible); FerretDB 1.x stores an indexed array as one PostgreSQL btree key,
    whose size is limited."""
    admin = catalog.admin()
    for seed, key in enumerate(("brand", "color", "author", "tags")):
        value = _incompressible(seed)
        body = product_body(attributes={key: value})
        created = await catalog.client.post("/api/products", json=body, headers=admin)
        assert created.status_code in (201, 422), (key, created.text)
        if created.status_code == 422:
            assert created.headers["content-type"] == "application/problem+json"
            continue
        stored = (await catalog.client.get(created.headers["location"], headers=admin)).json()
        assert stored["attributes"][key] == value
        if key != "tags":  # the filterable (indexed) keys still filter on any element
            found = await catalog.client.get("/api/products", params={f"attr.{key}": value[3]})
            assert [p["id"] for p in found.json()["items"]] == [stored["id"]]
        # The same value written by PUT and PATCH onto a product that did not have it.
        existing = await create_product(catalog)
        replaced = await catalog.client.put(
            f"/api/products/{existing['id']}",
            json={k: v for k, v in body.items() if k != "sku"},
            headers=admin,
        )
        assert replaced.status_code == 200, (key, replaced.text)
        patched = await catalog.client.patch(
            f"/api/products/{(await create_product(catalog))['id']}",
            json={"attributes": {key: value}},
            headers=admin,
        )
        assert patched.status_code == 200, (key, patched.text)


async def _reachable_by_slug(catalog: Running, product: dict[str, object]) -> None:
    slug = str(product["slug"])
    assert re.fullmatch(SLUG_PATTERN, slug), slug
    assert len(slug) <= 120
    response = await catalog.client.get(f"/api/products/{slug}")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == product["id"]


async def test_a_taken_name_slug_near_the_length_limit_gets_a_valid_one(catalog: Running) -> None:
    # The name's slug is 119 characters: with a hyphen and the sku appended and then cut to
    # 120, it used to end in a hyphen, be stored anyway, and be unreachable by slug.
    name = new_id()[-8:] + "a" * 111 + " b"
    first = await create_product(catalog, name=name)
    assert len(first["slug"]) == 119
    second = await create_product(catalog, name=name)
    assert second["slug"] != first["slug"]
    for product in (first, second):
        await _reachable_by_slug(catalog, product)


async def test_a_taken_name_slug_at_the_length_limit_is_no_conflict(catalog: Running) -> None:
    # The name's slug is cut to 120 characters: the fallback used to be cut back to the very
    # slug that was taken, a 409 the client (who sent no slug) could do nothing about.
    name = new_id()[-8:] + "b" * 140
    created = [await create_product(catalog, name=name) for _ in range(3)]
    assert len({product["slug"] for product in created}) == 3
    for product in created:
        await _reachable_by_slug(catalog, product)


async def test_a_name_whose_slug_is_taken_with_the_same_sku_slug_still_gets_one(
    catalog: Running,
) -> None:
    # Two skus with the same slug ("X.1" and "x-1") leave the second product's name-and-sku
    # slug taken too: it gets another unique tail rather than a 409.
    tag = new_id()[-8:]
    name = f"Chaleira {tag}"
    first = await create_product(catalog, name=name, sku=f"K-{tag}.1")
    second = await create_product(catalog, name=name, sku=f"k-{tag}-1")
    third = await create_product(catalog, name=name, sku=f"K.{tag}.1")
    assert second["slug"] == f"{first['slug']}-k-{tag}-1"
    assert len({first["slug"], second["slug"], third["slug"]}) == 3
    for product in (first, second, third):
        await _reachable_by_slug(catalog, product)


async def test_a_name_that_spells_a_route_gets_a_reachable_slug(catalog: Running) -> None:
    # "trending" names a route under /api/products: as a slug, the product was unreachable.
    for name in ("Trending", "Search"):
        created = await create_product(catalog, name=name)
        assert created["slug"] not in RESERVED_SLUGS
        await _reachable_by_slug(catalog, created)


async def test_products_created_at_once_with_one_name_all_get_a_slug(catalog: Running) -> None:
    # Each request finds the name's slug free, and all but one lose the insert's race for it:
    # they were answered 409 for a slug the client never sent.
    name = f"Frigideira {new_id()[-8:]}"
    responses = await asyncio.gather(
        *(
            catalog.client.post(
                "/api/products", json=product_body(name=name), headers=catalog.admin()
            )
            for _ in range(6)
        )
    )
    assert [response.status_code for response in responses] == [201] * 6, [
        response.text for response in responses
    ]
    created = [response.json() for response in responses]
    assert len({product["slug"] for product in created}) == 6
    for product in created:
        await _reachable_by_slug(catalog, product)
