from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from shopkit.edge import DEFAULT_PURGE_CHANNEL
from shopkit.settings import SERVICE_PORTS, ServiceSettings, settings_config


def _local_upstreams() -> dict[str, str]:
    return {
        name: f"http://127.0.0.1:{port}"
        for name, port in SERVICE_PORTS.items()
        if name != "gateway"
    }


class BudgetLimits(BaseModel):
    """Requests allowed per window for one budget, per client IP and per signed-in user."""

    model_config = ConfigDict(extra="forbid")

    per_ip: int = Field(ge=1)
    per_user: int = Field(ge=1)


def _default_rate_limits() -> dict[str, BudgetLimits]:
    return {
        # Credential endpoints (login, register, refresh, password reset): guessing is the threat.
        "auth": BudgetLimits(per_ip=30, per_user=30),
        # POST /api/orders: each one reserves stock and authorises a card.
        "checkout": BudgetLimits(per_ip=20, per_user=10),
        "read": BudgetLimits(per_ip=600, per_user=600),
        "write": BudgetLimits(per_ip=120, per_user=120),
        # Providers retry on 429, so a generous budget only guards against floods.
        "webhook": BudgetLimits(per_ip=1200, per_user=1200),
    }


def _default_timeouts() -> dict[str, float]:
    return {"auth": 10.0, "orders": 15.0, "payments": 15.0}


class GatewaySettings(ServiceSettings):
    """Settings of the gateway (environment variables prefixed `GATEWAY_`, then `SHOP_`)."""

    model_config = settings_config("GATEWAY_")
    service_name = "gateway"

    upstreams: dict[str, str] = Field(default_factory=_local_upstreams)
    """Base URL of each service, by service name."""

    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    """Time allowed for an upstream's response (read and write) unless `timeouts` says otherwise."""
    timeouts: dict[str, float] = Field(default_factory=_default_timeouts)
    """Per-service response timeout in seconds, overriding `upstream_timeout_seconds`."""
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    pool_timeout_seconds: float = Field(default=2.0, gt=0)
    upstream_transport: Literal["aiohttp", "httpcore"] = "aiohttp"
    """Connection pool under the httpx client: aiohttp's (faster) or httpcore's."""
    max_connections: int = Field(default=200, ge=1)
    max_keepalive_connections: int = Field(default=100, ge=1)
    retries: int = Field(default=2, ge=0, le=5)
    """Extra attempts for idempotent methods when the upstream could not be reached."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (none by default)."""

    trusted_proxies: list[str] = Field(default_factory=list)
    """Peers (load balancers) whose X-Forwarded-For is believed; none by default: the gateway
    is the edge and every client could write that header."""

    rate_limit_enabled: bool = True
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    rate_limits: dict[str, BudgetLimits] = Field(default_factory=_default_rate_limits)
    """Budgets by name (auth, checkout, read, write, webhook); JSON in the environment."""
    rate_limit_scale: float = Field(default=1.0, gt=0)
    """Multiplies every budget: load tests and demos raise all limits with one variable."""
    rate_limit_local_budgets: list[str] = Field(default_factory=lambda: ["read"])
    """Budgets whose anonymous requests are counted in memory and synchronised with Redis in
    batches (see `gateway.ratelimit`); the others are counted in Redis on every request."""
    rate_limit_sync_seconds: float = Field(default=0.05, gt=0, le=5)
    redis_namespace: str = ""
    """Prefix of the gateway's Redis keys (rate-limit counters); test runs set a unique one."""

    edge_cache_enabled: bool = True
    """Keep the answers services mark shareable (`Surrogate-Control`) in memory."""
    edge_cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """Memory for kept answers (bodies, headers and bookkeeping); the least recently used leave
    first beyond it."""
    edge_cache_max_body_bytes: int = Field(default=256 * 1024, ge=1)
    edge_purge_channel: str = DEFAULT_PURGE_CHANNEL
    """Redis channel on which services announce writes that invalidate shared answers."""

    openapi_cache_seconds: float = Field(default=60.0, ge=0)

    def timeout_for(self, service: str) -> float:
        return self.timeouts.get(service, self.upstream_timeout_seconds)

    def limits_for(self, budget: str) -> BudgetLimits:
        base = self.rate_limits.get(budget) or _default_rate_limits()[budget]
        return BudgetLimits(
            per_ip=max(1, round(base.per_ip * self.rate_limit_scale)),
            per_user=max(1, round(base.per_user * self.rate_limit_scale)),
        )
