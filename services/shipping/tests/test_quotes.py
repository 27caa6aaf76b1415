"""Signed quotes priced from shipping's own projection of catalog.events."""

from __future__ import annotations

from typing import Any

import pytest
from contracts.events.catalog import ProductDeactivated, ProductUpdated
from shopkit.quotes import InvalidQuoteError, verify_quote
from shopkit.testing import eventually, publish

from . import factories
from .conftest import Running

PROBLEM = "application/problem+json"


async def _quote(shipping: Running, cep: str, items: list[tuple[str, int]]) -> Any:
    return await shipping.client.post(
        "/api/shipping/quotes",
        json={"destination_cep": cep, "items": [{"sku": s, "quantity": q} for s, q in items]},
    )


async def _projected(shipping: Running, sku: str, weight: int) -> None:
    async def ready() -> bool:
        response = await _quote(shipping, "20040-002", [(sku, 1)])
        return response.status_code == 200 and response.json()["weight_grams"] == weight

    await eventually(ready, timeout=30, interval=0.3)


async def test_quotes_are_signed_for_exactly_the_items_and_cep(shipping: Running) -> None:
    book, lamp = factories.product(weight_grams=400), factories.product(weight_grams=1200)
    await publish(shipping.settings.kafka_namespace, book, lamp)
    await _projected(shipping, book.sku, 400)
    await _projected(shipping, lamp.sku, 1200)

    response = await _quote(shipping, "20040-002", [(book.sku, 2), (lamp.sku, 1)])

    assert response.status_code == 200
    body = response.json()
    assert body["weight_grams"] == 2 * 400 + 1200
    options = body["options"]
    assert {(o["carrier"], o["service"]) for o in options} == {
        ("correios", "PAC"),
        ("correios", "SEDEX"),
        ("veloz", "EXPRESS"),
    }
    assert [o["price"] for o in options] == sorted(o["price"] for o in options)
    secret = shipping.settings.quote_signing_secret.get_secret_value()
    for option in options:
        quote = verify_quote(option["quote_id"], secret)
        assert (
            quote.carrier,
            quote.service,
            quote.price,
            quote.currency,
            quote.estimated_days,
        ) == (
            option["carrier"],
            option["service"],
            option["price"],
            option["currency"],
            option["estimated_days"],
        )
        assert quote.destination_cep == "20040002"
        assert quote.covers([(book.sku, 2), (lamp.sku, 1)])
        assert not quote.covers([(book.sku, 1), (lamp.sku, 1)])
        assert not quote.is_expired()
        assert option["currency"] == "BRL"
        assert isinstance(option["price"], int)


async def test_a_tampered_quote_does_not_verify(shipping: Running) -> None:
    item = factories.product(weight_grams=300)
    await publish(shipping.settings.kafka_namespace, item)
    await _projected(shipping, item.sku, 300)
    option = (await _quote(shipping, "01310100", [(item.sku, 1)])).json()["options"][0]
    payload, signature = option["quote_id"].split(".")
    secret = shipping.settings.quote_signing_secret.get_secret_value()
    with pytest.raises(InvalidQuoteError):
        verify_quote(payload[:-2] + "xx." + signature, secret)
    with pytest.raises(InvalidQuoteError):
        verify_quote(option["quote_id"], "another-secret")


async def test_get_form_matches_post(shipping: Running) -> None:
    item = factories.product(weight_grams=2500)
    await publish(shipping.settings.kafka_namespace, item)
    await _projected(shipping, item.sku, 2500)
    posted = (await _quote(shipping, "90010-000", [(item.sku, 3)])).json()
    got = await shipping.client.get(
        "/api/shipping/quotes", params={"destination_cep": "90010000", "items": [f"{item.sku}:3"]}
    )
    assert got.status_code == 200
    assert [(o["service"], o["price"]) for o in got.json()["options"]] == [
        (o["service"], o["price"]) for o in posted["options"]
    ]
    bad = await shipping.client.get(
        "/api/shipping/quotes",
        params={"destination_cep": "90010000", "items": [f"{item.sku}:zero"]},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == PROBLEM


async def test_projection_ignores_older_versions_and_deactivation(shipping: Running) -> None:
    item = factories.product(weight_grams=100, version=1)
    newer = ProductUpdated(**{**item.model_dump(), "weight_grams": 900, "version": 3})
    older = ProductUpdated(**{**item.model_dump(), "weight_grams": 50_000, "version": 2})
    await publish(shipping.settings.kafka_namespace, item, newer, older)
    await _projected(shipping, item.sku, 900)
    marker = factories.product(weight_grams=10)  # published after `older`, same consumer
    await publish(shipping.settings.kafka_namespace, marker)
    await _projected(shipping, marker.sku, 10)
    response = await _quote(shipping, "20040002", [(item.sku, 1)])
    assert response.json()["weight_grams"] == 900

    await publish(
        shipping.settings.kafka_namespace,
        ProductDeactivated(
            product_id=item.product_id, sku=item.sku, version=4, occurred_at=item.occurred_at
        ),
    )

    async def refused() -> bool:
        return (await _quote(shipping, "20040002", [(item.sku, 1)])).status_code == 404

    await eventually(refused, timeout=30, interval=0.3)


@pytest.mark.parametrize("cep", ["123", "00000-000", "ABCDE-123", "0131010", "78950-000"])
async def test_invalid_cep_is_a_422_problem(shipping: Running, cep: str) -> None:
    response = await _quote(shipping, cep, [("ANY-SKU", 1)])
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/validation-error")  # the CEP pattern is the rule


async def test_unknown_sku_is_a_404_problem(shipping: Running) -> None:
    response = await _quote(shipping, "01310-100", [("NO-SUCH-SKU", 1)])
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["skus"] == ["NO-SUCH-SKU"]


@pytest.mark.parametrize(
    "body",
    [
        {"destination_cep": "01310100", "items": []},
        {"destination_cep": "01310100", "items": [{"sku": "A", "quantity": 0}]},
        {"destination_cep": "01310100", "items": [{"sku": "A", "quantity": 1}], "price": 1},
        {"items": [{"sku": "A", "quantity": 1}]},
    ],
)
async def test_malformed_quote_requests_are_422(shipping: Running, body: dict[str, Any]) -> None:
    response = await shipping.client.post("/api/shipping/quotes", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_cep_lookup_works_offline(shipping: Running) -> None:
    response = await shipping.client.get("/api/shipping/cep/01310-100")
    assert response.status_code == 200
    assert response.json() == {
        "cep": "01310100",
        "state": "SP",
        "city": "São Paulo",
        "district": None,
        "street": None,
        "source": "offline",
    }
    inland = (await shipping.client.get("/api/shipping/cep/17500000")).json()
    assert (inland["state"], inland["city"]) == ("SP", None)
    invalid = await shipping.client.get("/api/shipping/cep/12")
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == PROBLEM
