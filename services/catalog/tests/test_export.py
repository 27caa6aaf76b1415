"""GET /api/products/me/export: the caller's reviews and purchase facts, nobody else's, behind a
token although product reads are public; it is never read as a product or its reviews."""

from __future__ import annotations

from shopkit.testing import eventually, publish

from contracts import new_id

from .conftest import Running
from .factories import create_product
from .test_reviews_and_trending import confirmed, delivered, review


async def test_export_holds_own_reviews_and_purchases(catalog: Running) -> None:
    first, second = await create_product(catalog), await create_product(catalog)
    ana, bruno = new_id(), new_id()
    order = confirmed(ana, [(first, 1)])
    await publish(catalog.namespace, order, delivered(order), confirmed(bruno, [(second, 2)]))

    async def recorded() -> bool:
        count: int = await catalog.db["purchases"].count_documents(
            {"user_id": {"$in": [ana, bruno]}}
        )
        return count == 3

    await eventually(recorded, timeout=60)
    written = await catalog.client.post(
        f"/api/products/{first['id']}/reviews",
        json={"rating": 4, "title": "Bom", "text": "Chegou rápido"},
        headers=catalog.tokens.headers(ana),
    )
    assert written.status_code == 201, written.text
    assert (await review(catalog, second, ana, 2, text="Não gostei")).status_code == 201
    assert (await review(catalog, second, bruno, 5, text="Excelente")).status_code == 201

    response = await catalog.client.get(
        "/api/products/me/export", headers=catalog.tokens.headers(ana)
    )

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["user_id"] == ana
    assert [
        (r["product_id"], r["rating"], r["title"], r["text"], r["verified_purchase"])
        for r in export["reviews"]
    ] == [
        (first["id"], 4, "Bom", "Chegou rápido", True),
        (second["id"], 2, None, "Não gostei", False),
    ]
    assert all(r["user_id"] == ana and r["created_at"] for r in export["reviews"])
    assert [(p["kind"], p["order_id"], p["sku"]) for p in export["purchases"]] == [
        ("confirmed", order.order_id, first["sku"]),
        ("delivered", order.order_id, first["sku"]),
    ]
    assert "Excelente" not in response.text  # Bruno's review is his


async def test_a_user_with_nothing_gets_empty_lists(catalog: Running) -> None:
    nobody = new_id()
    response = await catalog.client.get(
        "/api/products/me/export", headers=catalog.tokens.headers(nobody)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"user_id": nobody, "reviews": [], "purchases": []}


async def test_export_needs_a_token_and_leaves_product_paths_alone(catalog: Running) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await catalog.client.get("/api/products/me/export", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    product = await create_product(catalog)
    assert (await catalog.client.get(f"/api/products/{product['slug']}")).status_code == 200
    reviews = await catalog.client.get(f"/api/products/{product['id']}/reviews")
    assert reviews.status_code == 200
    assert reviews.json()["items"] == []
    # `me` is an ordinary (unknown) product slug elsewhere.
    assert (await catalog.client.get("/api/products/me")).status_code == 404
    assert (await catalog.client.get("/api/products/me/reviews")).status_code == 404
