"""The contract between a service and the gateway's edge cache.

A service marks a response the gateway may keep and hand to other callers with
`Surrogate-Control: max-age=N` and tags it with `Surrogate-Key` (the Edge Architecture
headers CDNs use for the same purpose; the gateway strips both before answering). It then owes
the gateway a purge, on the Redis channel below, after every write that could change such a
response. Only responses that are the same for every non-admin caller may be marked.
"""

from __future__ import annotations

SURROGATE_CONTROL = "surrogate-control"
SURROGATE_KEY = "surrogate-key"
DEFAULT_PURGE_CHANNEL = "shop:edge:purge"
"""Redis pub/sub channel carrying the surrogate keys to purge, one key per message."""


def shareable(*, key: str, max_age: int) -> dict[str, str]:
    """Headers letting the gateway keep a response `max_age` seconds under surrogate `key`."""
    return {SURROGATE_CONTROL: f"max-age={max_age}", SURROGATE_KEY: key}


def parse_max_age(surrogate_control: str | None) -> int | None:
    """Seconds a surrogate may keep the response, or None when it may not keep it."""
    if not surrogate_control:
        return None
    for directive in surrogate_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "no-store":
            return None
        if name.lower() == "max-age" and value.isdigit():
            return int(value) or None
    return None
