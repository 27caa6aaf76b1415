from __future__ import annotations

import re
from typing import Annotated

from contracts.types import utc_now
from fastapi import APIRouter, Query, Request, Response, status
from shopkit.problems import responses
from shopkit.security import AdminUser, CurrentUser, OptionalUser

from catalog_service.errors import (
    DuplicateReviewError,
    DuplicateSkuError,
    DuplicateSlugError,
    InvalidCursorError,
    InvalidFilterError,
    ProductBusyError,
    ProductNotFoundError,
    UnknownCategoryError,
)
from catalog_service.resources import CatalogDep
from catalog_service.schemas import (
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

JSON = "application/json"
LIST_PARAMETERS = frozenset({"q", "category", "min_price", "max_price", "sort", "limit", "cursor"})
_ATTRIBUTE_PARAMETER = re.compile(r"^attr\.([a-z][a-z0-9_]{0,39})$")
Limit = Annotated[int, Query(ge=1, le=100)]
Price = Annotated[int | None, Query(ge=0, le=10_000_000_000)]


def _attribute_filters(request: Request) -> dict[str, str]:
    """`attr.<name>=value` parameters; any other unknown parameter is an error, not ignored."""
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in LIST_PARAMETERS:
            continue
        match = _ATTRIBUTE_PARAMETER.match(name)
        if match is None:
            raise InvalidFilterError(f"unknown parameter {name!r}")
        if match.group(1) in found:
            raise InvalidFilterError(f"{name} given twice")
        found[match.group(1)] = value
    return found


@router.get(
    "",
    response_model=ProductList,
    responses=responses(InvalidFilterError, InvalidCursorError),
    description="Search and browse. Filters on attributes are `attr.<name>=value` "
    f"(names: {', '.join(listing.FILTERABLE_ATTRIBUTES)}). "
    "Sorts: relevance (default with q), newest (default), price_asc, price_desc, rating.",
)
async def list_products(
    *,
    request: Request,
    catalog: CatalogDep,
    viewer: OptionalUser,
    q: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[str | None, Query(max_length=120)] = None,
    min_price: Price = None,
    max_price: Price = None,
    sort: listing.SortName | None = None,
    limit: Limit = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    query = listing.ListQuery(
        q=q,
        category=category,
        min_price=min_price,
        max_price=max_price,
        attributes=_attribute_filters(request),
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    body = await listing.list_products(catalog, query=query, viewer=viewer)
    return Response(body, media_type=JSON)


@router.get("/categories", response_model=CategoryTree)
async def category_tree(catalog: CatalogDep) -> Response:
    return Response(await categories.category_tree(catalog), media_type=JSON)


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
    "/{id_or_slug}", response_model=ProductPublic, responses=responses(ProductNotFoundError)
)
async def get_product(id_or_slug: str, catalog: CatalogDep, viewer: OptionalUser) -> Response:
    body = await products.get_product(catalog, id_or_slug=id_or_slug, viewer=viewer)
    return Response(body, media_type=JSON)


_WRITE_ERRORS = responses(
    ProductNotFoundError, DuplicateSlugError, UnknownCategoryError, ProductBusyError
)


@router.put("/{product_id}", response_model=ProductPublic, responses=_WRITE_ERRORS)
async def replace_product(
    product_id: str, catalog: CatalogDep, _: AdminUser, body: ProductReplace
) -> ProductPublic:
    return await products.change_product(
        catalog, product_id=product_id, changes=body.model_dump(mode="json")
    )


@router.patch("/{product_id}", response_model=ProductPublic, responses=_WRITE_ERRORS)
async def patch_product(
    product_id: str, catalog: CatalogDep, _: AdminUser, body: ProductPatch
) -> ProductPublic:
    return await products.change_product(
        catalog,
        product_id=product_id,
        changes=body.changes(),
    )


@router.delete(
    "/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(ProductNotFoundError, ProductBusyError),
)
async def delete_product(product_id: str, catalog: CatalogDep, _: AdminUser) -> Response:
    await products.delete_product(catalog, product_id=product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{id_or_slug}/reviews",
    response_model=ReviewList,
    responses=responses(ProductNotFoundError, InvalidCursorError),
)
async def list_reviews(
    id_or_slug: str,
    catalog: CatalogDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 20,
) -> ReviewList:
    return await reviews.list_reviews(catalog, id_or_slug=id_or_slug, cursor=cursor, limit=limit)


@router.post(
    "/{id_or_slug}/reviews",
    response_model=ReviewPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(ProductNotFoundError, DuplicateReviewError, ProductBusyError),
)
async def add_review(
    id_or_slug: str, catalog: CatalogDep, user: CurrentUser, body: ReviewCreate
) -> ReviewPublic:
    return await reviews.add_review(catalog, id_or_slug=id_or_slug, author=user, data=body)
