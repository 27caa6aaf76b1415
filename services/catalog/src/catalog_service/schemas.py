from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from contracts.types import Sku
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

RESERVED_SLUGS = frozenset({"categories", "trending", "seed", "search"})
"""Words that name routes under /api/products, so no product may take them as its slug."""

_ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _slug_not_reserved(value: str) -> str:
    if value in RESERVED_SLUGS:
        raise ValueError(f"{value!r} is reserved")
    return value


def _attribute_keys(value: dict[str, Any]) -> dict[str, Any]:
    for key in value:
        if not _ATTRIBUTE_KEY.match(key):
            raise ValueError(f"attribute name {key!r} must be snake_case (a-z, 0-9, _)")
    return value


Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=120, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$"),
    AfterValidator(_slug_not_reserved),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=5000)]
Price = Annotated[StrictInt, Field(ge=0, le=10_000_000_000)]
"""Integer minor units (centavos); a float or a negative amount is refused."""
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Weight = Annotated[StrictInt, Field(ge=1, le=1_000_000)]
SafeInt = Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]
"""Integers JSON clients and BSON both hold exactly."""
AttributeValue = (
    Annotated[str, StringConstraints(max_length=200)]
    | StrictBool
    | SafeInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | Annotated[list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=10)]
)
Attributes = Annotated[
    dict[str, AttributeValue], Field(max_length=30), AfterValidator(_attribute_keys)
]
CategoryIds = Annotated[list[str], Field(max_length=10)]
Images = Annotated[list[HttpUrl], Field(max_length=10)]


class ProductFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug | None = None
    """Derived from the name when omitted."""
    description: Description = ""
    price: Price
    currency: Currency = "BRL"
    category_ids: CategoryIds = []
    attributes: Attributes = {}
    images: Images = []
    weight_grams: Weight
    is_active: StrictBool = True


class ProductCreate(ProductFields):
    sku: Sku


class ProductReplace(ProductFields):
    """PUT: every mutable field (the sku never changes)."""


class ProductPatch(BaseModel):
    """PATCH: only the fields given change; none of them may be null."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    price: Price | None = None
    currency: Currency | None = None
    category_ids: CategoryIds | None = None
    attributes: Attributes | None = None
    images: Images | None = None
    weight_grams: Weight | None = None
    is_active: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(str(key) for key, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"{', '.join(nulls)} may not be null")
        return data

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set)


class Rating(BaseModel):
    count: int
    average: float | None


class ProductPublic(BaseModel):
    id: str
    sku: str
    name: str
    slug: str
    description: str
    price: int
    currency: str
    category_ids: list[str]
    attributes: dict[str, Any]
    images: list[str]
    weight_grams: int
    is_active: bool
    rating: Rating
    version: int
    created_at: datetime
    updated_at: datetime


class ProductList(BaseModel):
    items: list[ProductPublic]
    next_cursor: str | None
    total: int | None = None


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug | None = None
    parent_id: str | None = None


class CategoryPublic(BaseModel):
    id: str
    name: str
    slug: str
    parent_id: str | None
    path: str


class CategoryNode(CategoryPublic):
    children: list[CategoryNode] = []


class CategoryTree(BaseModel):
    items: list[CategoryNode]


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Annotated[StrictInt, Field(ge=1, le=5)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class ReviewPublic(BaseModel):
    id: str
    product_id: str
    user_id: str
    rating: int
    title: str | None
    text: str
    verified_purchase: bool
    created_at: datetime


class ReviewList(BaseModel):
    items: list[ReviewPublic]
    next_cursor: str | None
    rating: Rating


class TrendingProduct(BaseModel):
    product: ProductPublic
    units: int


class TrendingList(BaseModel):
    items: list[TrendingProduct]
    window_days: int


class SeedResult(BaseModel):
    categories_created: int
    products_created: int
    categories_total: int
    products_total: int
