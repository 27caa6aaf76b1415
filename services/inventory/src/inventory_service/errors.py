"""Domain errors of the inventory service, mapped once to problem+json."""

from __future__ import annotations

from shopkit.problems import ConflictError, NotFoundError


class StockNotFoundError(NotFoundError):
    slug = "stock-not-found"
    title = "No stock record for this sku"


class ReservationNotFoundError(NotFoundError):
    slug = "reservation-not-found"
    title = "No reservation for this order"


class BelowReservedError(ConflictError):
    slug = "stock-below-reserved"
    title = "On-hand stock cannot go below the units reserved for open orders"


class StockChangedError(ConflictError):
    """The stored on_hand is not the `expected_on_hand` the admin's change was based on."""

    slug = "stock-changed"
    title = "On-hand stock changed since it was read"


class AboveMaximumError(ConflictError):
    slug = "stock-above-maximum"
    title = "On-hand stock cannot go above the maximum a stock level may hold"
