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
