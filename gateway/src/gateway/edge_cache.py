"""The edge cache: answers the services marked shareable, kept in the gateway's memory.

A service opts a response in with `Surrogate-Control: max-age=N` and `Surrogate-Key`
(`shopkit.edge`); only GET answers of 200 to callers who see what everyone sees (anonymous, or
a valid token without the admin role) are kept or served. Correctness rests on purges, the TTL
only bounds a missed one:

* every write a service makes publishes its surrogate key on a Redis channel, and every gateway
  replica drops the entries tagged with it;
* a write that passes through this gateway and may have changed something (not refused with
  a 4xx) drops that service's entries here before its answer is relayed, so a caller reads
  its own write without waiting for the channel;
* an answer fetched while a purge concerning its service happened is not kept (it may
  predate the write);
* without a live subscription (Redis down, reconnecting) nothing is served or kept, and every
  confirmed (re)subscription starts from an empty cache, since purges sent meanwhile were
  missed.

Across replicas a purge arrives within the channel's delivery time, as with a CDN's purge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from prometheus_client import Counter
from shopkit.edge import follow_purges, parse_max_age
from starlette.responses import Response

log = logging.getLogger(__name__)

EDGE_LOOKUPS = Counter(
    "shop_gateway_edge_cache_total", "Edge cache lookups by outcome", ["service", "outcome"]
)


ENTRY_OVERHEAD_BYTES = 520
"""What keeping one answer costs beyond the bytes it carries: the ordered dict's slot and link,
the `Entry`, and the object headers of its target, body, header list and tag set (measured
with tracemalloc on CPython 3.11). Counting bodies alone let a budget of 64 MB hold about a
gigabyte of small answers."""
HEADER_OVERHEAD_BYTES = 130
"""Per header line kept: its tuple, two bytes objects and list slot."""
TAG_OVERHEAD_BYTES = 50
"""Per surrogate key kept: its str object and set slot."""
SWEEP_STEP = 4
"""Entries checked for expiry per answer kept: more than the one added, so an expired answer
nobody asks for again leaves within a round of about len/3 offers, instead of holding its
memory until the least-recently-used order reaches it."""


@dataclass(frozen=True, slots=True)
class Entry:
    service: str
    tags: frozenset[str]
    headers: list[tuple[bytes, bytes]]
    body: bytes
    stored: float
    expires: float
    size: int
    """What keeping it costs, as counted against the budget (`_cost`)."""


def _cost(
    target: str, body: bytes, headers: list[tuple[bytes, bytes]], tags: frozenset[str]
) -> int:
    return (
        ENTRY_OVERHEAD_BYTES
        + len(target)
        + len(body)
        + sum(HEADER_OVERHEAD_BYTES + len(name) + len(value) for name, value in headers)
        + sum(TAG_OVERHEAD_BYTES + len(tag) for tag in tags)
    )


class EdgeCache:
    """Shareable answers by request target (path and query), within a budget of the memory
    they cost (bodies, headers and bookkeeping); the least recently used leave first."""

    def __init__(self, *, max_bytes: int, max_body_bytes: int) -> None:
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_body_bytes = max_body_bytes
        self._epoch = 0
        """Bumped by purges that may concern every service (by tag, or of everything)."""
        self._service_epochs: dict[str, int] = {}
        """Bumped by a service's own writes: they leave other services' fills in flight alone
        (a cart write must not discard a catalog answer on its way)."""
        self._sweep: list[str] = []
        """Targets this round of the expiry sweep has still to check."""
        self._services: set[str] = set()
        """Services whose answers were ever asked for here: only their writes purge."""
        self.live = False
        """True while purges are being heard; nothing is served or kept otherwise."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def _drop(self, target: str) -> None:
        self._bytes -= self._entries.pop(target).size

    def _sweep_expired(self, now: float) -> None:
        """Drop the expired among the next `SWEEP_STEP` entries of the sweep. A round starts
        from a copy of the keys (one C-level copy every len/SWEEP_STEP calls), so no call walks
        the cache in Python and entries may come and go meanwhile."""
        if not self._sweep:
            self._sweep = list(self._entries)
        for _ in range(min(SWEEP_STEP, len(self._sweep))):
            target = self._sweep.pop()
            entry = self._entries.get(target)
            if entry is not None and entry.expires <= now:
                self._drop(target)

    def begin(self, service: str) -> int:
        """Before fetching a shareable answer: the epoch to hand to `offer`. It changes with
        every purge, and an answer fetched across a change is not kept."""
        self._services.add(service)
        return self._epoch_of(service)

    def _epoch_of(self, service: str) -> int:
        # Both counters only grow, so their sum changes whenever either does.
        return self._epoch + self._service_epochs.get(service, 0)

    def lookup(self, service: str, target: str) -> Response | None:
        if not self.live:
            return None
        entry = self._entries.get(target)
        now = time.monotonic()
        if entry is None or entry.expires <= now:
            if entry is not None:
                self._drop(target)
            EDGE_LOOKUPS.labels(service, "miss").inc()
            return None
        self._entries.move_to_end(target)
        EDGE_LOOKUPS.labels(service, "hit").inc()
        response = Response(content=entry.body, status_code=200)  # only 200s are kept
        response.raw_headers = [
            *entry.headers,
            (b"age", str(int(now - entry.stored)).encode()),
            (b"x-cache", b"hit"),
        ]
        return response

    def offer(
        self,
        service: str,
        target: str,
        *,
        epoch: int,
        surrogate_control: str | None,
        surrogate_key: str | None,
        response: Response,
    ) -> None:
        """Keep `response` if its service marked it shareable and nothing was purged since
        `epoch` (read before the request was sent)."""
        max_age = parse_max_age(surrogate_control)
        if (
            max_age is None
            or not self.live
            or epoch != self._epoch_of(service)
            or response.status_code != 200
            or type(response) is not Response  # a streamed answer has no body to keep
            or len(response.body) > self._max_body_bytes
        ):
            return
        body, headers = bytes(response.body), list(response.raw_headers)
        tags = frozenset((surrogate_key or "").split())
        size = _cost(target, body, headers, tags)
        if size > self._max_bytes:
            return
        now = time.monotonic()
        self._sweep_expired(now)
        if target in self._entries:
            self._drop(target)
        self._entries[target] = Entry(
            service=service,
            tags=tags,
            headers=headers,
            body=body,
            stored=now,
            expires=now + max_age,
            size=size,
        )
        self._bytes += size
        while self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))
        response.raw_headers.append((b"x-cache", b"miss"))

    def purge(self, *, tag: str | None = None, service: str | None = None) -> None:
        """Drop the entries with this surrogate key or of this service (everything if neither)."""
        if tag is None and service is not None and service not in self._services:
            return  # nothing of it was ever fetched for sharing: no entry, no fill in flight
        if tag is None and service is not None:
            self._service_epochs[service] = self._service_epochs.get(service, 0) + 1
        else:
            self._epoch += 1  # a surrogate key may tag any service's answers
        if tag is None and service is None:
            self._entries.clear()
            self._sweep.clear()
            self._bytes = 0
            return
        stale = [
            target
            for target, entry in self._entries.items()
            if (tag is not None and tag in entry.tags) or entry.service == service
        ]
        for target in stale:
            self._drop(target)


class _CacheFollowingPurges:
    """The cache is live only while the subscription holds, and starts over (empty) when Redis
    confirms it: a purge published before that moment may have been missed."""

    def __init__(self, cache: EdgeCache) -> None:
        self.cache = cache

    def subscribed(self) -> None:
        self.cache.purge()
        self.cache.live = True

    def purged(self, key: str) -> None:
        self.cache.purge(tag=key)

    def lost(self) -> None:
        self.cache.live = False
        self.cache.purge()


async def listen_for_purges(
    cache: EdgeCache, redis_url: str, channel: str, stop: asyncio.Event
) -> None:
    """Keep a subscription to the purge channel; the cache is live only while it holds."""
    await follow_purges(redis_url, channel, _CacheFollowingPurges(cache), stop)
