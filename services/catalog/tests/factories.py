"""Products and categories as an admin would send them."""

from __future__ import annotations

from typing import Any

from contracts import new_id

from .conftest import Running


def product_body(**overrides: Any) -> dict[str, Any]:
    tag = new_id()[-10:]
    body: dict[str, Any] = {
        "sku": f"T-{tag}",
        "name": f"Cafeteira Italiana Moka {tag}",
        "description": "Cafeteira de alumínio para fogão, 6 xícaras.",
        "price": 12990,
        "currency": "BRL",
        "attributes": {"brand": "Bialetti", "material": "Alumínio", "color": "Prata"},
        "weight_grams": 600,
    }
    return body | overrides


async def create_product(service: Running, **overrides: Any) -> dict[str, Any]:
    response = await service.client.post(
        "/api/products", json=product_body(**overrides), headers=service.admin()
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_category(
    service: Running, name: str, parent_id: str | None = None
) -> dict[str, Any]:
    tag = new_id()[-8:]
    response = await service.client.post(
        "/api/products/categories",
        json={"name": f"{name} {tag}", "parent_id": parent_id},
        headers=service.admin(),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
