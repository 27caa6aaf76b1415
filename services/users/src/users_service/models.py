from __future__ import annotations

from datetime import date, datetime

from shopkit.db import service_metadata
from shopkit.messaging import messaging_tables
from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = service_metadata()


messaging = messaging_tables(Base.metadata)


class Profile(Base):
    __tablename__ = "profiles"

    user_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    cpf: Mapped[str | None] = mapped_column(String(11))
    birth_date: Mapped[date | None] = mapped_column(Date)
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(10)))
    language: Mapped[str] = mapped_column(String(8))
    marketing_opt_in: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set when the account was deleted: the row stays as a tombstone with no personal data,
    so a redelivered UserRegistered cannot bring the profile back."""

    __table_args__ = (
        Index("uq_profiles_cpf", "cpf", unique=True, postgresql_where=text("cpf IS NOT NULL")),
    )


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("profiles.user_id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str | None] = mapped_column(String(60))
    recipient: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(20))
    complement: Mapped[str | None] = mapped_column(String(100))
    district: Mapped[str] = mapped_column(String(100))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    cep: Mapped[str] = mapped_column(String(8))
    country: Mapped[str] = mapped_column(String(2))
    is_default: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # At most one default address per user, whatever the concurrency.
        Index("uq_addresses_default", "user_id", unique=True, postgresql_where=text("is_default")),
    )


class WishlistItem(Base):
    __tablename__ = "wishlist_items"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("profiles.user_id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CatalogProduct(Base):
    """Users' projection of `catalog.events` (latest document version): what can be wished."""

    __tablename__ = "catalog_products"

    product_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(300))
    slug: Mapped[str] = mapped_column(String(300))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    is_active: Mapped[bool]
    version: Mapped[int] = mapped_column(Integer)
