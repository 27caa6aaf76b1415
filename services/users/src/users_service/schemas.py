from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from contracts.events.users import Channel, Language
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

_NON_DIGITS = re.compile(r"[^\d]")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def _phone(value: str) -> str:
    """E.164; Brazilian numbers may be written locally, e.g. `(11) 98765-4321`."""
    digits = _NON_DIGITS.sub("", value)
    phone = (
        f"+{digits}"
        if value.strip().startswith("+")
        else (f"+55{digits}" if len(digits) in (10, 11) else f"+{digits}")
    )
    if not _E164.match(phone):
        raise ValueError("phone must be E.164 (+5511987654321) or a Brazilian number with DDD")
    return phone


def _birth_date(value: date) -> date:
    if not date(1900, 1, 1) <= value <= date.today():
        raise ValueError("birth date must be between 1900-01-01 and today")
    return value


Phone = Annotated[str, StringConstraints(max_length=30), AfterValidator(_phone)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
State = Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{2}$")]
BirthDate = Annotated[date, AfterValidator(_birth_date)]
CepText = Annotated[str, StringConstraints(max_length=16)]
CpfText = Annotated[str, StringConstraints(max_length=20)]
Uuid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]


class ProfilePublic(BaseModel):
    id: str
    email: str | None
    name: str
    phone: str | None
    cpf: str | None
    birth_date: date | None
    created_at: datetime
    updated_at: datetime


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    phone: Phone | None = None
    cpf: CpfText | None = None
    birth_date: BirthDate | None = None


class AddressCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] | None = None
    recipient: Text
    street: Text
    number: ShortText
    complement: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = (
        None
    )
    district: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    state: State
    cep: CepText
    country: Annotated[str, StringConstraints(pattern=r"^BR$")] = "BR"
    is_default: bool = False


class AddressUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] | None = None
    recipient: Text | None = None
    street: Text | None = None
    number: ShortText | None = None
    complement: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = (
        None
    )
    district: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    city: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    state: State | None = None
    cep: CepText | None = None
    is_default: bool | None = None


class AddressPublic(BaseModel):
    id: str
    label: str | None
    recipient: str
    street: str
    number: str
    complement: str | None
    district: str
    city: str
    state: str
    cep: str
    country: str
    is_default: bool
    created_at: datetime
    updated_at: datetime


class AddressList(BaseModel):
    items: list[AddressPublic]
    next_cursor: str | None = None


class PreferencesPublic(BaseModel):
    channels: list[Channel]
    language: Language
    marketing_opt_in: bool


class PreferencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] | None = Field(default=None, max_length=10)
    language: Language | None = None
    marketing_opt_in: bool | None = None


class WishlistAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Uuid


class WishlistItemPublic(BaseModel):
    product_id: str
    sku: str
    name: str
    slug: str
    price: int
    currency: str
    is_active: bool
    added_at: datetime


class WishlistList(BaseModel):
    items: list[WishlistItemPublic]
    next_cursor: str | None = None


class ExportSection(BaseModel):
    status: str
    """`ok`, or `unavailable` when the owning service could not answer right now."""
    data: dict[str, Any] | None = None
    error: str | None = None


class DataExport(BaseModel):
    """An LGPD/GDPR access request: everything the platform holds about the caller."""

    user_id: str
    generated_at: datetime
    profile: ProfilePublic
    preferences: PreferencesPublic
    addresses: list[AddressPublic]
    wishlist: list[WishlistItemPublic]
    services: dict[str, ExportSection]


class DeletionAccepted(BaseModel):
    user_id: str
    status: str = "deletion_requested"
    requested_at: datetime
