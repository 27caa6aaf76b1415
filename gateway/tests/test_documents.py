"""The gateway's own endpoints: merged OpenAPI, Swagger UI, aggregated health, CORS."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from .conftest import CORS_ORIGIN, DOWN_SERVICE, Stack


async def test_merged_openapi_is_valid_3_1_with_client_paths_and_bearer_security(
    stack: Stack,
) -> None:
    response = await stack.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    validate(document)  # raises on anything that is not valid OpenAPI 3.1 (dangling $refs too)
    assert document["openapi"].startswith("3.1")

    paths = document["paths"]
    assert "/api/orders/typed/{item_id}" in paths
    assert "/api/products/typed/{item_id}" in paths
    assert not any(path.startswith(("/health", "/metrics")) for path in paths)

    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    # protected: bearer required; public catalog read: token optional
    assert paths["/api/orders/typed/{item_id}"]["get"]["security"] == [{"bearerAuth": []}]
    assert {} in paths["/api/products/typed/{item_id}"]["get"]["security"]
    # Under a public prefix, what the service itself documents decides: a route that needs a
    # token stays token-only (it was documented optional, and answered 401 without one).
    assert paths["/api/products/typed-mine"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/products/typed-maybe"]["get"]["security"] == [{}, {"bearerAuth": []}]
    # operation ids stay unique across services
    ids = [
        op["operationId"]
        for item in paths.values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids))


async def test_same_schema_name_with_different_content_is_kept_apart(stack: Stack) -> None:
    document = (await stack.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    orders_ref = document["paths"]["/api/orders/typed/{item_id}"]["get"]["responses"]["200"][
        "content"
    ]["application/json"]["schema"]["$ref"]
    catalog_ref = document["paths"]["/api/products/typed/{item_id}"]["get"]["responses"]["200"][
        "content"
    ]["application/json"]["schema"]["$ref"]
    orders_item = schemas[orders_ref.rsplit("/", 1)[-1]]
    catalog_item = schemas[catalog_ref.rsplit("/", 1)[-1]]
    assert "total" in orders_item["properties"]
    assert "label" in catalog_item["properties"]
    # identical schemas (the request body model) are shared, not duplicated
    assert "ItemCreate" in schemas
    assert not any(name.endswith("ItemCreate") and name != "ItemCreate" for name in schemas)


async def test_unavailable_service_is_named_not_fatal(stack: Stack) -> None:
    document = (await stack.client.get("/openapi.json")).json()
    assert DOWN_SERVICE in document["info"]["description"]


async def test_swagger_ui_reads_the_merged_document(stack: Stack) -> None:
    response = await stack.client.get("/docs")
    assert response.status_code == 200
    assert "swagger-ui" in response.text
    assert "/openapi.json" in response.text


async def test_health_aggregates_every_service_readiness(stack: Stack) -> None:
    response = await stack.client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["services"][DOWN_SERVICE].startswith("unreachable")
    assert all(state == "ok" for name, state in body["services"].items() if name != DOWN_SERVICE)


async def test_cors_allows_configured_origins_only(stack: Stack) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = await stack.client.options(
        "/api/orders", headers={"Origin": CORS_ORIGIN, **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == CORS_ORIGIN
    refused = await stack.client.options(
        "/api/orders", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers

    simple = await stack.client.get(
        "/api/products", headers={"Origin": CORS_ORIGIN, **stack.headers()}
    )
    assert simple.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "RateLimit-Remaining" in simple.headers["access-control-expose-headers"]
    # A storefront on another origin keeps an anonymous cart: it sends X-Cart-Id and reads the
    # one orders gives a new cart.
    cart = await stack.client.options(
        "/api/cart/items",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-cart-id",
        },
    )
    assert cart.status_code == 200, cart.text
    assert "x-cart-id" in cart.headers["access-control-allow-headers"].lower()
    assert "X-Cart-Id" in simple.headers["access-control-expose-headers"]
