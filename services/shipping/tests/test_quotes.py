"""Signed quotes priced from shipping's own projection of catalog.events."""

from __future__ import annotations

import re
from typing import Any

import pytest
from contracts.events.catalog import ProductDeactivated, ProductUpdated
from shipping_service import rates
from shipping_service.schemas import MAX_LINE_QUANTITY, MAX_QUOTE_ITEMS
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


def _assert_problem(response: Any, slug: str, *, status: int = 422) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith(f"/{slug}")
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    "items",
    [
        [{"sku": "A", "quantity": MAX_LINE_QUANTITY + 1}],
        [{"sku": "A", "quantity": 10_000}],
        [{"sku": f"S-{i}", "quantity": 1} for i in range(MAX_QUOTE_ITEMS + 1)],
    ],
    ids=["line-above-cart-limit", "old-limit", "more-lines-than-a-cart"],
)
async def test_items_no_cart_could_hold_are_a_422_validation_problem(
    shipping: Running, items: list[dict[str, Any]]
) -> None:
    response = await shipping.client.post(
        "/api/shipping/quotes", json={"destination_cep": "01310100", "items": items}
    )
    body = _assert_problem(response, "validation-error")
    assert body["errors"][0]["loc"][:2] == ["body", "items"]


async def test_get_form_refuses_what_a_cart_could_not_hold(shipping: Running) -> None:
    for items in (
        [f"A:{MAX_LINE_QUANTITY + 1}"],
        ["A:10000"],
        [f"S-{i}" for i in range(MAX_QUOTE_ITEMS + 1)],
    ):
        response = await shipping.client.get(
            "/api/shipping/quotes", params={"destination_cep": "01310100", "items": items}
        )
        _assert_problem(response, "validation-error")


async def test_a_sku_given_twice_is_quoted_once_with_its_quantities_added(
    shipping: Running,
) -> None:
    """Allowed by the request schema, so accepted: the quote is signed for one line per sku,
    as the cart it will be checked out with holds them."""
    item, other = factories.product(weight_grams=300), factories.product(weight_grams=300)
    await publish(shipping.settings.kafka_namespace, item, other)
    await _projected(shipping, item.sku, 300)
    await _projected(shipping, other.sku, 300)
    secret = shipping.settings.quote_signing_secret.get_secret_value()

    posted = await _quote(shipping, "01310100", [(item.sku, 1), (other.sku, 2), (item.sku, 3)])
    assert posted.status_code == 200, posted.text
    assert posted.json()["weight_grams"] == 6 * 300
    signed = verify_quote(posted.json()["options"][0]["quote_id"], secret)
    assert signed.covers([(item.sku, 4), (other.sku, 2)])

    got = await shipping.client.get(
        "/api/shipping/quotes",
        params={"destination_cep": "01310100", "items": [f"{other.sku}:1", f"{other.sku}:1"]},
    )
    assert got.status_code == 200, got.text
    assert verify_quote(got.json()["options"][0]["quote_id"], secret).covers([(other.sku, 2)])
    # Added up past one line's limit (each part within it): still a quote, not a 500.
    full = await shipping.client.get(
        "/api/shipping/quotes",
        params={"destination_cep": "01310100", "items": [f"{item.sku}:50", f"{item.sku}:50"]},
    )
    assert full.status_code == 200, full.text
    assert full.json()["weight_grams"] == 100 * 300


async def test_the_heaviest_allowed_quote_is_priced_and_one_gram_more_is_refused(
    shipping: Running,
) -> None:
    # 50 units of this product fill exactly MAX_PARCELS full parcels.
    heavy = factories.product(weight_grams=rates.MAX_WEIGHT_GRAMS // MAX_LINE_QUANTITY)
    gram = factories.product(weight_grams=1)
    await publish(shipping.settings.kafka_namespace, heavy, gram)
    await _projected(shipping, heavy.sku, rates.MAX_WEIGHT_GRAMS // MAX_LINE_QUANTITY)
    await _projected(shipping, gram.sku, 1)

    response = await _quote(shipping, "20040-002", [(heavy.sku, MAX_LINE_QUANTITY)])

    assert response.status_code == 200
    body = response.json()
    assert body["weight_grams"] == rates.MAX_WEIGHT_GRAMS == 29_800_000
    # Zone 2 (SP to RJ): 1000 parcels of 30 kg at the heaviest band's price, plus 35 %.
    assert {o["service"]: o["price"] for o in body["options"]} == {
        "PAC": 1000 * 10990 * 135 // 100,
        "SEDEX": 1000 * 17990 * 135 // 100,
        "EXPRESS": 1000 * 19990 * 135 // 100,
    }
    secret = shipping.settings.quote_signing_secret.get_secret_value()
    assert verify_quote(body["options"][0]["quote_id"], secret).covers(
        [(heavy.sku, MAX_LINE_QUANTITY)]
    )

    too_heavy = await _quote(shipping, "20040-002", [(heavy.sku, MAX_LINE_QUANTITY), (gram.sku, 1)])
    refused = _assert_problem(too_heavy, "quote-too-heavy", status=409)
    assert refused["weight_grams"] == rates.MAX_WEIGHT_GRAMS + 1
    assert refused["max_weight_grams"] == rates.MAX_WEIGHT_GRAMS


def test_openapi_declares_the_limits_that_are_enforced(shipping: Running) -> None:
    document = shipping.app.openapi()
    schemas = document["components"]["schemas"]
    assert schemas["QuoteItem"]["properties"]["quantity"]["maximum"] == MAX_LINE_QUANTITY
    assert schemas["QuoteRequest"]["properties"]["items"]["maxItems"] == MAX_QUOTE_ITEMS
    path = document["paths"]["/api/shipping/quotes"]
    (items,) = [p for p in path["get"]["parameters"] if p["name"] == "items"]
    assert items["schema"]["maxItems"] == MAX_QUOTE_ITEMS
    pattern = re.compile(items["schema"]["items"]["pattern"])
    for quantity in range(MAX_LINE_QUANTITY + 2):
        admitted = pattern.fullmatch(f"SKU-1:{quantity}") is not None
        assert admitted == (1 <= quantity <= MAX_LINE_QUANTITY), quantity
    for method in ("post", "get"):
        assert PROBLEM in path[method]["responses"]["409"]["content"], method
        assert PROBLEM in path[method]["responses"]["404"]["content"], method


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
