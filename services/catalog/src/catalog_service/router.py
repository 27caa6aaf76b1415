from __future__ import annotations

import re
from typing import Annotated

from contracts.types import utc_now
from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import WithJsonSchema
from shopkit.edge import shareable
from shopkit.erasure import AccountDeletedError
from shopkit.params import Uuid7
from shopkit.problems import UnauthorizedError, responses
from shopkit.security import AdminUser, CurrentUser, OptionalUser, Principal
from starlette.convertors import Convertor, register_url_convertor

from catalog_service.errors import (
    DuplicateReviewError,
    DuplicateSkuError,
    DuplicateSlugError,
    InvalidCursorError,
    InvalidFilterError,
    ProductBusyError,
    ProductNotFoundError,
    UnknownCategoryError,
    UnknownParameterError,
)
from catalog_service.repository.cache import EDGE_KEY
from catalog_service.resources import Catalog, CatalogDep
from catalog_service.schemas import (
    ID_OR_SLUG_PATTERN,
    RESERVED_SLUGS,
    CatalogExport,
    CategoryCreate,
    CategoryPublic,
    CategoryTree,
    ProductCreate,
    ProductList,
    ProductPatch,
    ProductPublic,
    ProductReplace,
    ReviewCreate,
    ReviewList,
    ReviewPublic,
    SeedResult,
    TrendingList,
)
from catalog_service.service import categories, listing, products, reviews, seed, trending

router = APIRouter(prefix="/api/products", tags=["catalog"])


class _ProductSegment(Convertor[str]):
    """`{product_id:product}`: any segment except the names of this router's fixed routes.

    `PUT /api/products/categories` is then a 405 on the categories resource (which has GET and
    POST), not an attempt to read `categories` as a product id; any other segment reaches the
    route, where a malformed id is a 422.
    """

    regex = "(?!(?:" + "|".join(sorted(RESERVED_SLUGS)) + ")$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("product", _ProductSegment())

JSON = "application/json"
LIST_PARAMETERS = frozenset({"q", "category", "min_price", "max_price", "sort", "limit", "cursor"})
_ATTRIBUTE_PARAMETER = re.compile(r"^attr\.([a-z][a-z0-9_]{0,39})$")
Limit = Annotated[int, Query(ge=1, le=100)]
Price = Annotated[
    int | None,
    Query(ge=0, le=10_000_000_000),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 10_000_000_000}),
]
IdOrSlugPath = Annotated[
    str,
    Path(
        max_length=120,
        pattern=f"^{ID_OR_SLUG_PATTERN}$",
        description="The product's id (UUIDv7) or its slug.",
    ),
]
CURSOR_PATTERN = "^[A-Za-z0-9_=-]+$"
CURSOR_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": CURSOR_PATTERN}
Cursor = Annotated[
    str | None,
    Query(min_length=1, max_length=1000, pattern=CURSOR_PATTERN),
    WithJsonSchema(CURSOR_SCHEMA),
]
"""`next_cursor` of the previous page, as issued (URL-safe base64); any other value is a 404."""
Category = Annotated[
    str | None,
    Query(max_length=120, pattern=f"^{ID_OR_SLUG_PATTERN}$"),
    WithJsonSchema({"type": "string", "maxLength": 120, "pattern": f"^{ID_OR_SLUG_PATTERN}$"}),
]
SearchText = Annotated[
    str | None,
    Query(max_length=200),
    WithJsonSchema({"type": "string", "maxLength": 200}),
]
Sort = Annotated[
    listing.SortName | None,
    WithJsonSchema({"type": "string", "enum": list(listing.SORTS)}),
]


def _attribute_filters(request: Request) -> dict[str, str]:
    """`attr.<name>=value` parameters; any other unknown parameter is an error, not ignored."""
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in LIST_PARAMETERS:
            continue
        match = _ATTRIBUTE_PARAMETER.match(name)
        if match is None:
            raise UnknownParameterError(f"unknown parameter {name!r}")
        if match.group(1) not in listing.FILTERABLE_ATTRIBUTES:
            raise UnknownParameterError(
                f"attribute {match.group(1)!r} cannot be filtered on; use one of: "
                + ", ".join(listing.FILTERABLE_ATTRIBUTES)
            )
        if match.group(1) in found:
            raise UnknownParameterError(f"{name} given twice")
        found[match.group(1)] = value
    return found


def _public_read(catalog: Catalog, body: bytes, viewer: Principal | None) -> Response:
    """A read answer; what every non-admin sees alike may be kept at the gateway's edge (the
    cache invalidation purges it there too)."""
    response = Response(body, media_type=JSON)
    max_age = catalog.settings.edge_max_age_seconds
    if max_age and not (viewer is not None and viewer.is_admin):
        response.headers.update(shareable(key=EDGE_KEY, max_age=max_age))
    return response


@router.get(
    "",
    response_model=ProductList,
    responses=responses(InvalidFilterError, UnknownParameterError),
    description="Search and browse. Filters on attributes are `attr.<name>=value` "
    f"(names: {', '.join(listing.FILTERABLE_ATTRIBUTES)}). "
    "Sorts: relevance (default with q), newest (default), price_asc, price_desc, rating. "
    "A price range whose minimum is above its maximum matches nothing.",
)
async def list_products(
    *,
    request: Request,
    catalog: CatalogDep,
    viewer: OptionalUser,
    q: SearchText = None,
    category: Category = None,
    min_price: Price = None,
    max_price: Price = None,
    sort: Sort = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    attributes = _attribute_filters(request)
    if min_price is not None and max_price is not None and min_price > max_price:
        # An empty range is a question with an empty answer, not a malformed request.
        return Response(
            ProductList(items=[], next_cursor=None, total=0).model_dump_json(), media_type=JSON
        )
    query = listing.ListQuery(
        q=q,
        category=category,
        min_price=min_price,
        max_price=max_price,
        attributes=attributes,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    body = await listing.list_products(catalog, query=query, viewer=viewer)
    return _public_read(catalog, body, viewer)


@router.get("/categories", response_model=CategoryTree)
async def category_tree(catalog: CatalogDep) -> Response:
    return _public_read(catalog, await categories.category_tree(catalog), viewer=None)


@router.post(
    "/categories",
    response_model=CategoryPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(DuplicateSlugError, UnknownCategoryError),
)
async def create_category(
    catalog: CatalogDep, _: AdminUser, body: CategoryCreate
) -> CategoryPublic:
    return await categories.create_category(catalog, data=body)


@router.get("/trending", response_model=TrendingList)
async def trending_products(catalog: CatalogDep) -> Response:
    return Response(await trending.trending(catalog, now=utc_now()), media_type=JSON)


@router.get("/me/export", response_model=CatalogExport, responses=responses(UnauthorizedError))
async def export_my_data(catalog: CatalogDep, user: CurrentUser) -> CatalogExport:
    """Everything the catalog holds about the caller (used by the users service's export):
    their reviews and the purchases that verify them. Two segments: never a product path."""
    return await reviews.export(catalog, principal=user)


@router.post("/seed", response_model=SeedResult)
async def seed_catalog(catalog: CatalogDep, _: AdminUser) -> SeedResult:
    return await seed.seed(catalog)


@router.post(
    "",
    response_model=ProductPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(DuplicateSkuError, DuplicateSlugError, UnknownCategoryError),
)
async def create_product(
    catalog: CatalogDep, _: AdminUser, body: ProductCreate, response: Response
) -> ProductPublic:
    created = await products.create_product(catalog, data=body)
    response.headers["Location"] = f"/api/products/{created.id}"
    return created


@router.get(
    "/{product_id}", response_model=ProductPublic, responses=responses(ProductNotFoundError)
)
async def get_product(
    product_id: IdOrSlugPath, catalog: CatalogDep, viewer: OptionalUser
) -> Response:
    """A product by id or slug. (One path template with the writes below, so that a 405 on it
    lists every method the resource has.)"""
    body = await products.get_product(catalog, id_or_slug=product_id, viewer=viewer)
    return _public_read(catalog, body, viewer)


_WRITE_ERRORS = responses(
    ProductNotFoundError, DuplicateSlugError, UnknownCategoryError, ProductBusyError
)


@router.put("/{product_id:product}", response_model=ProductPublic, responses=_WRITE_ERRORS)
async def replace_product(
    product_id: Uuid7, catalog: CatalogDep, _: AdminUser, body: ProductReplace
) -> ProductPublic:
    return await products.change_product(
        catalog, product_id=product_id, changes=body.model_dump(mode="json")
    )


@router.patch("/{product_id:product}", response_model=ProductPublic, responses=_WRITE_ERRORS)
async def patch_product(
    product_id: Uuid7, catalog: CatalogDep, _: AdminUser, body: ProductPatch
) -> ProductPublic:
    return await products.change_product(
        catalog,
        product_id=product_id,
        changes=body.changes(),
    )


@router.delete(
    "/{product_id:product}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(ProductNotFoundError, ProductBusyError),
)
async def delete_product(product_id: Uuid7, catalog: CatalogDep, _: AdminUser) -> Response:
    await products.delete_product(catalog, product_id=product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{id_or_slug}/reviews",
    response_model=ReviewList,
    responses=responses(ProductNotFoundError, InvalidCursorError),
)
async def list_reviews(
    id_or_slug: IdOrSlugPath, catalog: CatalogDep, cursor: Cursor = None, limit: Limit = 20
) -> ReviewList:
    return await reviews.list_reviews(catalog, id_or_slug=id_or_slug, cursor=cursor, limit=limit)


@router.post(
    "/{id_or_slug}/reviews",
    response_model=ReviewPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(ProductNotFoundError, DuplicateReviewError, AccountDeletedError),
)
async def add_review(
    id_or_slug: IdOrSlugPath, catalog: CatalogDep, user: CurrentUser, body: ReviewCreate
) -> ReviewPublic:
    return await reviews.add_review(catalog, id_or_slug=id_or_slug, author=user, data=body)
