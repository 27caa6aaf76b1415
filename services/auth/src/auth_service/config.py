from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from shopkit.settings import ServiceSettings, settings_config

# OWASP Password Storage Cheat Sheet: equivalent Argon2id minimums (memory KiB by time cost).
OWASP_ARGON2_MIN_MEMORY_KIB = {1: 47104, 2: 19456, 3: 12288, 4: 9216, 5: 7168}


class AuthSettings(ServiceSettings):
    """Settings of the auth service (environment variables prefixed `AUTH_`, then `SHOP_`)."""

    model_config = settings_config("AUTH_")
    service_name = "auth"

    secret_key: SecretStr = SecretStr("local_development_only-auth-secret-key")
    """Master secret: encrypts signing keys and TOTP secrets at rest and peppers token hashes."""

    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=90)
    password_reset_ttl_minutes: int = Field(default=30, ge=5, le=120)
    password_reset_cooldown_seconds: int = Field(default=60, ge=0)
    """A new reset email for the same account at most this often (mail bombing)."""

    signing_key_max_age_days: float = Field(default=30, gt=0)
    """Automatic rotation: a new signing key once the active one is this old."""
    key_refresh_seconds: float = Field(default=30, gt=0)
    """How often each replica reloads the key ring (and rotates when due)."""

    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19456, ge=7168)
    argon2_parallelism: int = Field(default=1, ge=1)

    login_account_max_failures: int = Field(default=5, ge=1)
    """Failures before an account is locked out; each further failure doubles the lockout."""
    login_ip_max_failures: int = Field(default=20, ge=1)
    login_lockout_base_seconds: int = Field(default=30, ge=1)
    login_lockout_max_seconds: int = Field(default=3600, ge=1)
    login_failure_memory_seconds: int = Field(default=3600, ge=60)
    """Failures are forgotten this long after the last one."""

    login_attempt_retention_days: int = Field(default=30, ge=1)
    """Login attempts (the history, and failed tries on unknown addresses) are kept this long."""
    ended_credential_retention_days: int = Field(default=30, ge=1)
    """Sessions (refresh families and their tokens) are deleted this long after they expired
    or were revoked, reset links this long after they expired. A live session is never
    touched: its spent tokens are what reuse detection recognises. At least a day, so an
    ended session's rows outlast its last access token (a revocation denies those by them)."""
    housekeeping_interval_seconds: float = Field(default=3600, gt=0)
    """How often old login attempts, ended sessions and expired reset links are purged."""

    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    """Peers (the gateway) whose X-Forwarded-For is believed for the client IP."""

    redis_namespace: str = ""
    """Prefix of this service's own Redis keys (lockout counters); test runs set a unique one."""

    mfa_issuer: str = "Shop"

    @model_validator(mode="after")
    def _argon2_at_least_owasp(self) -> AuthSettings:
        floor = OWASP_ARGON2_MIN_MEMORY_KIB[min(self.argon2_time_cost, 5)]
        if self.argon2_memory_kib < floor:
            raise ValueError(
                f"argon2_memory_kib={self.argon2_memory_kib} with time cost "
                f"{self.argon2_time_cost} is below OWASP's minimum ({floor} KiB)"
            )
        return self
