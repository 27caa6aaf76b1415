from __future__ import annotations

from datetime import datetime
from typing import Any

from shopkit.db import service_metadata
from shopkit.messaging import messaging_tables
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

EMAIL_LENGTH = 320
"""The longest email address (RFC 5321 path limits), as the columns hold it."""


class Base(DeclarativeBase):
    metadata = service_metadata()


messaging = messaging_tables(Base.metadata)


class User(Base):
    """An account. Roles are derived from `is_admin`, which only the CLI can set."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=false())
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    mfa_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """TOTP secret, encrypted at rest; set by setup, confirmed by enable."""
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """Last accepted TOTP time step: a code is never accepted twice."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """Set when the user deleted their account: the row stays (its id is referenced by other
    services) but holds placeholders instead of personal data and can never sign in again."""

    @property
    def roles(self) -> list[str]:
        return ["customer", "admin"] if self.is_admin else ["customer"]


class RefreshFamily(Base):
    """One login session: every refresh token rotated from one login shares it."""

    __tablename__ = "refresh_families"
    __table_args__ = (
        # Housekeeping finds the sessions that ended long enough ago.
        Index("ix_refresh_families_expires_at", "expires_at"),
        Index("ix_refresh_families_revoked_at", "revoked_at"),
    )

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Absolute end of the session: rotation never extends it."""
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        ForeignKey("refresh_families.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """Set when exchanged: presenting it again is reuse."""
    access_jti: Mapped[str] = mapped_column(UUID(as_uuid=False))
    """The access token issued together with this refresh token: denied if the family is
    revoked, so revocation also ends the session's live access tokens."""
    access_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PasswordReset(Base):
    __tablename__ = "password_resets"
    __table_args__ = (Index("ix_password_resets_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginAttempt(Base):
    """One login attempt, whatever its outcome (the user's login history and an audit trail)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_user_id_id", "user_id", "id"),
        # Account deletion finds the attempts on its address; housekeeping the old ones.
        Index("ix_login_attempts_email", "email"),
        Index("ix_login_attempts_at", "at"),
    )

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    ip: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SigningKey(Base):
    """An RSA key pair (private half sealed, PKCS#8); the newest unretired, activated one signs;
    pending and retired ones are published."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    private_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """Encrypted (AES-GCM) raw private key; wiped once the key is retired."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    activates_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When the key starts signing (None: at creation). A routine rotation publishes the new
    key first, so every replica's JWKS holds it before any token it signed exists."""
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    publish_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """After this instant no token signed by the key can still be valid."""
