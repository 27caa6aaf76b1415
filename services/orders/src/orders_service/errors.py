"""Domain errors of the orders service, mapped once to problem+json by the shared runtime."""

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


class UnknownProductError(UnprocessableError):
    slug = "unknown-product"
    title = "No product with this sku"


class ProductUnavailableError(UnprocessableError):
    slug = "product-unavailable"
    title = "Product is not for sale"


class QuantityLimitError(UnprocessableError):
    slug = "quantity-limit"
    title = "Quantity above the per-line limit"


class CartFullError(UnprocessableError):
    slug = "cart-full"
    title = "Too many different items in the cart"


class CurrencyMismatchError(UnprocessableError):
    slug = "currency-mismatch"
    title = "Items in different currencies"


class EmptyCartError(UnprocessableError):
    slug = "empty-cart"
    title = "The cart is empty"


class CouponInvalidError(UnprocessableError):
    slug = "coupon-invalid"
    title = "Coupon cannot be used"


class CouponExistsError(ConflictError):
    slug = "coupon-exists"
    title = "A coupon with this code exists"


class InvalidQuoteError(UnprocessableError):
    slug = "invalid-shipping-quote"
    title = "Shipping quote is invalid"


class ExpiredQuoteError(UnprocessableError):
    slug = "expired-shipping-quote"
    title = "Shipping quote expired"


class QuoteMismatchError(UnprocessableError):
    slug = "shipping-quote-mismatch"
    title = "Shipping quote does not match the cart or address"


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


class InvalidCursorError(UnprocessableError):
    slug = "invalid-cursor"
    title = "Invalid pagination cursor"
