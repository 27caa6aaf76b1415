"""Where each path goes, which routes need no token, and which rate-limit budget a call spends.

Routing is by path prefix; services serve the full path (orders serves `/api/orders/...`).
Public routes are an explicit allow-list of method + path template: everything else needs a
valid access token at the gateway (and the service verifies it again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIXES: tuple[tuple[str, str], ...] = (
    ("/api/auth", "auth"),
    ("/.well-known/jwks.json", "auth"),
    ("/api/users", "users"),
    ("/api/products", "catalog"),
    ("/api/inventory", "inventory"),
    ("/api/cart", "orders"),
    ("/api/orders", "orders"),
    ("/api/coupons", "orders"),
    ("/api/payments", "payments"),
    ("/api/shipping", "shipping"),
    ("/api/notifications", "notifications"),
)

READ_METHODS = frozenset({"GET", "HEAD"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""RFC 9110 idempotent methods: the only ones the gateway ever sends twice."""
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that may change what a service answers to reads (OPTIONS asks, it never writes)."""

CART_METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "DELETE"})

WEBHOOKS = ("/api/payments/webhooks/stripe", "/api/shipping/webhooks/{carrier}")

# (methods, path template); `{name}` matches one path segment, a trailing `/**` any sub-path.
PUBLIC_ROUTES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"POST"}), "/api/auth/register"),
    (frozenset({"POST"}), "/api/auth/login"),
    (frozenset({"POST"}), "/api/auth/refresh"),
    (frozenset({"POST"}), "/api/auth/verify"),
    (frozenset({"POST"}), "/api/auth/password/forgot"),
    (frozenset({"POST"}), "/api/auth/password/reset"),
    (READ_METHODS, "/.well-known/jwks.json"),
    (READ_METHODS, "/api/products"),
    (READ_METHODS, "/api/products/**"),
    (READ_METHODS, "/api/inventory/{sku}"),  # storefronts show availability
    # Carts work before login (the orders service issues an anonymous X-Cart-Id and merges it
    # into the user's cart after login); the token is optional and checked by orders.
    (CART_METHODS, "/api/cart"),
    (CART_METHODS, "/api/cart/**"),
    (frozenset({"POST"}), "/api/shipping/quotes"),
    (READ_METHODS, "/api/shipping/track/{tracking_number}"),
    (READ_METHODS, "/api/shipping/cep/{cep}"),
    *((frozenset({"POST"}), path) for path in WEBHOOKS),
)


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.escape(template).replace(r"/\*\*", "(?:/[^?]*)?")
    pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", pattern)
    return re.compile(f"^{pattern}/?$")


@dataclass(frozen=True)
class Route:
    service: str
    public: bool
    budget: str


class RouteTable:
    def __init__(self) -> None:
        self._public = [(methods, _compile(template)) for methods, template in PUBLIC_ROUTES]
        self._webhooks = [_compile(path) for path in WEBHOOKS]

    @staticmethod
    def service_for(path: str) -> str | None:
        for prefix, service in PREFIXES:
            if path == prefix or path.startswith(prefix + "/"):
                return service
        return None

    def is_public(self, method: str, path: str) -> bool:
        return any(method in methods and pattern.match(path) for methods, pattern in self._public)

    def budget(self, method: str, path: str) -> str:
        if method == "POST" and any(p.match(path) for p in self._webhooks):
            return "webhook"
        if method == "POST" and path.rstrip("/") == "/api/orders":
            return "checkout"
        if method not in READ_METHODS and path.startswith("/api/auth/"):
            return "auth"
        return "read" if method in READ_METHODS or method == "OPTIONS" else "write"

    def match(self, method: str, path: str) -> Route | None:
        service = self.service_for(path)
        if service is None:
            return None
        return Route(
            service=service, public=self.is_public(method, path), budget=self.budget(method, path)
        )
