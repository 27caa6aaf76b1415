"""Events of the catalog service (topic `catalog.events`, keyed by product id).

Each event carries the product's document `version`, so a projection can ignore a stale one.
One write bumps the version once; when it emits several events they all carry that version, the
full `ProductUpdated` snapshot first (then `PriceChanged`, then `ProductDeactivated`), so a
projection that applies only newer versions gets everything from the snapshot.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from contracts import topics
from contracts.base import Event
from contracts.types import Currency, Id, MinorUnits, Sku, UtcDatetime


class ProductSnapshot(Event):
    """Fields shared by the events that carry the whole sellable state of a product."""

    product_id: Id
    sku: Sku
    name: str
    slug: str
    price: MinorUnits
    currency: Currency
    category_ids: list[str] = Field(default_factory=list)
    is_active: bool
    weight_grams: int = Field(default=0, ge=0)
    version: int = Field(ge=1)
    occurred_at: UtcDatetime


class ProductCreated(ProductSnapshot):
    ce_type: ClassVar[str] = "shop.catalog.product_created.v1"
    topic: ClassVar[str] = topics.CATALOG
    key_field: ClassVar[str] = "product_id"


class ProductUpdated(ProductSnapshot):
    ce_type: ClassVar[str] = "shop.catalog.product_updated.v1"
    topic: ClassVar[str] = topics.CATALOG
    key_field: ClassVar[str] = "product_id"


class PriceChanged(Event):
    ce_type: ClassVar[str] = "shop.catalog.price_changed.v1"
    topic: ClassVar[str] = topics.CATALOG
    key_field: ClassVar[str] = "product_id"

    product_id: Id
    sku: Sku
    old_price: MinorUnits
    new_price: MinorUnits
    currency: Currency
    version: int = Field(ge=1)
    occurred_at: UtcDatetime


class ProductDeactivated(Event):
    ce_type: ClassVar[str] = "shop.catalog.product_deactivated.v1"
    topic: ClassVar[str] = topics.CATALOG
    key_field: ClassVar[str] = "product_id"

    product_id: Id
    sku: Sku
    version: int = Field(ge=1)
    occurred_at: UtcDatetime
