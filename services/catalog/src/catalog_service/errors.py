"""Domain errors of the catalog service, mapped once to problem+json.

As everywhere on the platform: 422 only for what the request schema already refuses, 404 when
something named in the path, the query or the body does not exist (a category, a product, the
page a cursor points to), 409 for a conflict with what is stored.
"""

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


class UnknownCategoryError(NotFoundError):
    slug = "unknown-category"
    title = "A category given does not exist"


class InvalidFilterError(NotFoundError):
    """A filter names something that does not exist (the category of `?category=`)."""

    slug = "invalid-filter"
    title = "The filter names nothing that exists"


class UnknownParameterError(UnprocessableError):
    """A query parameter the listing does not know (or given twice): refused, not ignored."""

    slug = "unknown-parameter"
    title = "Unknown or repeated query parameter"


class InvalidCursorError(NotFoundError):
    """Like an unknown page: a cursor this listing did not issue (or issued for another query,
    sort or filter) points nowhere."""

    slug = "invalid-cursor"
    title = "The cursor is not one this listing issued"


class ProductBusyError(ServiceUnavailableError):
    slug = "product-busy"
    title = "Another change to this product is in progress; retry shortly"
