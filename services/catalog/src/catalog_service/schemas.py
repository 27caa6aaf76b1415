"""Request and response models of the catalog API.

Request fields are documented exactly as they are validated (see `shopkit.params`): a request
matching the schema is never refused for its shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from shopkit.params import (
    MULTI_LINE,
    NO_CONTROL,
    SINGLE_LINE,
    UUID7_PATTERN,
    JsonInteger,
    Sku,
    Stripped,
    Uuid7,
    omitted_not_null,
)

RESERVED_SLUGS = frozenset({"categories", "trending", "seed", "search"})
"""Words that name routes under /api/products, so no product may take them as its slug."""

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
ATTRIBUTE_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
IMAGE_URL_PATTERN = (
    r"^https?://[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::[1-9][0-9]{0,3})?"
    r"(?:/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(?:\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
)
"""An http(s) image URL: a host name, an optional port, a path and query of URL characters."""
ID_OR_SLUG_PATTERN = f"(?:{UUID7_PATTERN[1:-1]}|{SLUG_PATTERN[1:-1]})"


def _slug_not_reserved(value: str) -> str:
    if value in RESERVED_SLUGS:
        raise ValueError(f"{value!r} is reserved")
    return value


Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=120, pattern=SLUG_PATTERN),
    AfterValidator(_slug_not_reserved),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 120,
            "pattern": SLUG_PATTERN,
            "not": {"enum": sorted(RESERVED_SLUGS)},
        }
    ),
]
IdOrSlug = Annotated[str, StringConstraints(max_length=120, pattern=f"^{ID_OR_SLUG_PATTERN}$")]
"""A product (or category) named by its UUIDv7 id or its slug."""
Name = Annotated[str, StringConstraints(max_length=200, pattern=SINGLE_LINE), Stripped]
Description = Annotated[str, StringConstraints(max_length=5000, pattern=NO_CONTROL)]
Price = Annotated[int, Field(ge=0, le=10_000_000_000), JsonInteger]
"""Integer minor units (centavos); a fraction or a negative amount is refused."""
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Weight = Annotated[int, Field(ge=1, le=1_000_000), JsonInteger]
SafeInt = Annotated[int, Field(ge=-(2**53), le=2**53), JsonInteger]
"""Integers JSON clients and BSON both hold exactly."""
AttributeKey = Annotated[str, StringConstraints(pattern=ATTRIBUTE_KEY_PATTERN)]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=200, pattern=NO_CONTROL)]
    | StrictBool
    | SafeInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | Annotated[
        list[Annotated[str, StringConstraints(max_length=100, pattern=NO_CONTROL)]],
        Field(max_length=10),
    ]
)
Attributes = Annotated[
    dict[AttributeKey, AttributeValue],
    Field(max_length=30, json_schema_extra={"additionalProperties": False}),
]
"""Snake-case names (documented by `patternProperties`; any other name is refused)."""
CategoryIds = Annotated[list[Uuid7], Field(max_length=10)]
Title = Annotated[str, StringConstraints(max_length=120, pattern=NO_CONTROL), Stripped]
ImageUrl = Annotated[str, StringConstraints(max_length=2000, pattern=IMAGE_URL_PATTERN)]
Images = Annotated[list[ImageUrl], Field(max_length=10)]


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

    model_config = ConfigDict(extra="forbid", json_schema_extra=omitted_not_null)

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
    parent_id: Uuid7 | None = None


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

    rating: Annotated[int, Field(ge=1, le=5), JsonInteger]
    title: (
        Annotated[str, StringConstraints(max_length=120, pattern=NO_CONTROL), Stripped] | None
    ) = None
    text: Annotated[str, StringConstraints(max_length=4000, pattern=MULTI_LINE), Stripped]


class ReviewPublic(BaseModel):
    id: str
    product_id: str
    user_id: str
    rating: int
    title: str | None
    text: str
    verified_purchase: bool
    created_at: datetime


class PurchasePublic(BaseModel):
    """That the user bought (`confirmed`) or received (`delivered`) an item: what makes their
    review of it a verified purchase."""

    kind: Literal["confirmed", "delivered"]
    order_id: str
    sku: str
    at: datetime


class CatalogExport(BaseModel):
    """Everything the catalog holds about the caller (LGPD/GDPR access request)."""

    user_id: str
    reviews: list[ReviewPublic]
    """Oldest first."""
    purchases: list[PurchasePublic]
    """Oldest first."""


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
