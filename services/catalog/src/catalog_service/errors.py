"""Domain errors of the catalog service, mapped once to problem+json."""

from __future__ import annotations

from shopkit.problems import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    UnprocessableError,
)


class ProductNotFoundError(NotFoundError):
    slug = "product-not-found"
    title = "No such product"


class CategoryNotFoundError(NotFoundError):
    slug = "category-not-found"
    title = "No such category"


class DuplicateSkuError(ConflictError):
    slug = "duplicate-sku"
    title = "A product with this sku already exists"


class DuplicateSlugError(ConflictError):
    slug = "duplicate-slug"
    title = "This slug is already taken"


class DuplicateReviewError(ConflictError):
    slug = "duplicate-review"
    title = "You have already reviewed this product"


class UnknownCategoryError(UnprocessableError):
    slug = "unknown-category"
    title = "A category given does not exist"


class InvalidFilterError(UnprocessableError):
    slug = "invalid-filter"
    title = "Unknown or malformed filter"


class InvalidCursorError(UnprocessableError):
    slug = "invalid-cursor"
    title = "The cursor is not one this listing issued"


class ProductBusyError(ServiceUnavailableError):
    slug = "product-busy"
    title = "Another change to this product is in progress; retry shortly"
