"""Shipping quotes: priced from shipping's own weights and rate tables, signed for orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from contracts.types import DEFAULT_CURRENCY
from pydantic import ValidationError
from shopkit import cep
from shopkit.quotes import QuoteItem as SignedItem
from shopkit.quotes import SignedQuote, sign_quote
from sqlalchemy.ext.asyncio import AsyncSession

from shipping_service import rates, repository
from shipping_service.config import ShippingSettings
from shipping_service.errors import (
    InvalidCepError,
    InvalidQuoteItemsError,
    QuoteTooHeavyError,
    UnknownSkuError,
)
from shipping_service.schemas import MAX_QUOTE_ITEMS, QuoteItem, QuoteOption, QuoteResponse


def normalize(value: str) -> str:
    try:
        return cep.normalize_cep(value)
    except cep.InvalidCepError as exc:
        raise InvalidCepError(str(exc)) from exc


async def quote(
    *,
    session: AsyncSession,
    settings: ShippingSettings,
    destination_cep: str,
    items: Sequence[QuoteItem],
    now: datetime | None = None,
) -> QuoteResponse:
    """Every service that delivers `items` to the CEP, each as a signed, expiring quote."""
    destination = normalize(destination_cep)
    items = _merged(items)
    products = await repository.products_by_sku(session, [item.sku for item in items])
    unknown = sorted(
        {i.sku for i in items if i.sku not in products or not products[i.sku].is_active}
    )
    if unknown:
        raise UnknownSkuError(
            f"cannot ship unknown or inactive sku(s): {', '.join(unknown)}", skus=unknown
        )
    weight = sum(products[item.sku].weight_grams * item.quantity for item in items)
    if weight > rates.MAX_WEIGHT_GRAMS:
        raise QuoteTooHeavyError(
            f"{weight} g is more than {rates.MAX_PARCELS} parcels carry "
            f"({rates.MAX_WEIGHT_GRAMS} g); split the order",
            weight_grams=weight,
            max_weight_grams=rates.MAX_WEIGHT_GRAMS,
        )
    # Whole seconds: the expiry is inside the signature and must survive a JSON round trip.
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires_at = issued + timedelta(seconds=settings.quote_ttl_seconds)
    signed_items = tuple(SignedItem(sku=item.sku, quantity=item.quantity) for item in items)
    secret = settings.quote_signing_secret.get_secret_value()
    options = []
    for rate in rates.rates_for(
        origin_cep=settings.origin_cep, destination_cep=destination, weight_grams=weight
    ):
        signed = SignedQuote(
            carrier=rate.carrier,
            service=rate.service,
            price=rate.price,
            currency=DEFAULT_CURRENCY,
            estimated_days=rate.estimated_days,
            destination_cep=destination,
            items=signed_items,
            expires_at=expires_at,
        )
        options.append(
            QuoteOption(
                quote_id=sign_quote(signed, secret),
                carrier=rate.carrier,
                service=rate.service,
                price=rate.price,
                currency=DEFAULT_CURRENCY,
                estimated_days=rate.estimated_days,
                expires_at=expires_at,
            )
        )
    return QuoteResponse(destination_cep=destination, weight_grams=weight, options=options)


def _merged(items: Sequence[QuoteItem]) -> list[QuoteItem]:
    """One item per sku, quantities added, in the order first given: the quote is signed for
    what a cart would hold (one line per sku), which is what checkout compares it with."""
    quantities: dict[str, int] = {}
    for item in items:
        quantities[item.sku] = quantities.get(item.sku, 0) + item.quantity
    if len(quantities) == len(items):
        return list(items)
    # Not validated again: a line's limit applies to what was sent, and added up a sku may pass
    # it (the weight limit still holds the whole quote).
    return [
        QuoteItem.model_construct(sku=sku, quantity=quantity)
        for sku, quantity in quantities.items()
    ]


def parse_item_params(values: Sequence[str]) -> list[QuoteItem]:
    """Items of the GET form: `items=SKU:QUANTITY` repeated (quantity defaults to 1)."""
    if not 1 <= len(values) <= MAX_QUOTE_ITEMS:
        raise InvalidQuoteItemsError(
            f"give between 1 and {MAX_QUOTE_ITEMS} items as items=SKU:QUANTITY"
        )
    items = []
    for value in values:
        sku, _, quantity = value.partition(":")
        try:
            items.append(QuoteItem.model_validate({"sku": sku, "quantity": quantity or "1"}))
        except ValidationError as exc:
            raise InvalidQuoteItemsError(f"item {value!r} is not SKU:QUANTITY") from exc
    return items
