"""Domain errors of the orders service, mapped once to problem+json by the shared runtime.

As everywhere on the platform: 422 only for what the request schema already refuses, 404 when
something named in the path, the query or the body does not exist (an order, a sku, a shipping
quote, the page a cursor points to), 409 when a well-formed request conflicts with the cart,
the catalog or the order as they are now. The one exception is the standard one: reusing an
Idempotency-Key for a different request is a 422 (draft-ietf-httpapi-idempotency-key-header).
"""

from __future__ import annotations

from shopkit.problems import ConflictError, DomainError, NotFoundError, UnprocessableError


class OrderNotFoundError(NotFoundError):
    slug = "order-not-found"
    title = "Order not found"


class CartItemNotFoundError(NotFoundError):
    slug = "cart-item-not-found"
    title = "Item not in the cart"


class CartNotFoundError(NotFoundError):
    slug = "cart-not-found"
    title = "Cart not found"


class CouponNotFoundError(NotFoundError):
    slug = "coupon-not-found"
    title = "Coupon not found"


class UnknownProductError(NotFoundError):
    slug = "unknown-product"
    title = "No product with this sku"


class ProductUnavailableError(ConflictError):
    slug = "product-unavailable"
    title = "Product is not for sale"


class QuantityLimitError(ConflictError):
    slug = "quantity-limit"
    title = "Quantity above the per-line limit"


class CartFullError(ConflictError):
    slug = "cart-full"
    title = "Too many different items in the cart"


class CurrencyMismatchError(ConflictError):
    slug = "currency-mismatch"
    title = "Items in different currencies"


class EmptyCartError(ConflictError):
    slug = "empty-cart"
    title = "The cart is empty"


class CouponInvalidError(ConflictError):
    slug = "coupon-invalid"
    title = "Coupon cannot be used"


class CouponExistsError(ConflictError):
    slug = "coupon-exists"
    title = "A coupon with this code exists"


class InvalidQuoteError(NotFoundError):
    slug = "invalid-shipping-quote"
    title = "Shipping quote is invalid"


class ExpiredQuoteError(ConflictError):
    slug = "expired-shipping-quote"
    title = "Shipping quote expired"


class QuoteMismatchError(ConflictError):
    slug = "shipping-quote-mismatch"
    title = "Shipping quote does not match the cart or address"


class PriceChangedError(ConflictError):
    """The total computed at checkout is not the `expected_total` the client was shown."""

    slug = "price-changed"
    title = "The total is not the one shown"


class IdempotencyKeyMissingError(DomainError):
    status = 400
    slug = "idempotency-key-required"
    title = "Idempotency-Key header required"


class IdempotencyKeyReusedError(UnprocessableError):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key already used with a different request"


class InvalidTransitionError(ConflictError):
    slug = "invalid-order-transition"
    title = "The order cannot change to that status now"


class InvalidCursorError(NotFoundError):
    """A cursor this API did not issue points to no page."""

    slug = "invalid-cursor"
    title = "Invalid pagination cursor"
