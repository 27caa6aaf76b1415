"""The order state machine and the payment status it tracks: pure rules, no I/O."""

from __future__ import annotations

from typing import Final, Literal, get_args

from contracts.events.orders import OrderStatus

STATUSES: Final[tuple[OrderStatus, ...]] = get_args(OrderStatus)

TRANSITIONS: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    "PENDING": frozenset({"AWAITING_PAYMENT", "CONFIRMED", "CANCELLED"}),
    "AWAITING_PAYMENT": frozenset({"CONFIRMED", "CANCELLED"}),
    # Cancelling a confirmed order voids the (uncaptured) authorization; after dispatch the
    # payment is captured and only a refund can undo it.
    "CONFIRMED": frozenset({"SHIPPED", "CANCELLED"}),
    # A shipped order refunded in full (a lost parcel) is REFUNDED; its delivery, if reported
    # later, changes nothing, so the end is the same whichever event comes first.
    "SHIPPED": frozenset({"DELIVERED", "REFUNDED"}),
    "DELIVERED": frozenset({"REFUNDED"}),
    "CANCELLED": frozenset(),
    "REFUNDED": frozenset(),
}

TERMINAL: Final[frozenset[OrderStatus]] = frozenset({"DELIVERED", "CANCELLED", "REFUNDED"})
"""The saga is over: nothing more is expected to happen on its own."""

IN_FLIGHT: Final[frozenset[OrderStatus]] = frozenset({"PENDING", "AWAITING_PAYMENT"})
"""Waiting for the saga's events (stock, payment): stuck after minutes."""

FULFILMENT: Final[frozenset[OrderStatus]] = frozenset({"CONFIRMED", "SHIPPED"})
"""Waiting for the physical world (dispatch, delivery): stuck after days."""

StuckReason = Literal["in_flight", "fulfilment", "cancellation_unanswered"]
"""Why an order counts as stuck: its saga's events (IN_FLIGHT) or the physical world
(FULFILMENT) are late, or shipping never answered its cancellation request."""

CUSTOMER_CANCELLABLE: Final[frozenset[OrderStatus]] = frozenset(
    {"PENDING", "AWAITING_PAYMENT", "CONFIRMED"}
)


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def as_status(value: str) -> OrderStatus:
    if value not in STATUSES:
        raise ValueError(f"unknown order status {value!r}")
    return value


# Payment status as last reported by payments. Reports can arrive out of order across
# topics; a lower-ranked report never overwrites a higher one.
PAYMENT_RANK: Final[dict[str, int]] = {
    "pending": 0,
    "action_required": 1,
    "authorized": 2,
    "failed": 3,
    "voided": 3,
    "captured": 3,
    "partially_refunded": 4,
    "refunded": 5,
}


def payment_status_after(current: str, reported: str) -> str:
    """The payment status once `reported` arrives; never moves backwards."""
    if PAYMENT_RANK.get(reported, -1) > PAYMENT_RANK.get(current, -1):
        return reported
    return current
