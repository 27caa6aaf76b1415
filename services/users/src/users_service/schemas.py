"""Request and response models of the users API.

Request fields are documented exactly as they are validated (see `shopkit.params`): what the
OpenAPI schema allows is accepted, the rest is a 422 problem.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from contracts.events.users import Channel, Language
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)
from shopkit.params import (
    CEP_MATCHES_STATE,
    NO_CONTROL,
    SINGLE_LINE,
    Cep,
    Date,
    Stripped,
    Uf,
    Uuid7,
)

PHONE_PATTERN = r"^(?:\+[1-9][0-9]{7,14}|\(?[0-9]{2}\)? ?9?[0-9]{4}[ -]?[0-9]{4})$"
"""E.164 (`+5511987654321`), or a Brazilian number with its DDD written locally
(`(11) 98765-4321`, `11987654321`, `1133334444`)."""

_NON_DIGITS = re.compile(r"[^\d]")


def _phone(value: str) -> str:
    digits = _NON_DIGITS.sub("", value)
    return f"+{digits}" if value.startswith("+") else f"+55{digits}"


CPF_PATTERN = r"^[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}-?[0-9]{2}$"


def _birth_year_pattern() -> str:
    # Years 1900 up to last year: a birth date is never in the future, and a pattern cannot
    # follow today's date through the current year.
    last = date.today().year - 1
    decades = "|".join(
        f"{century}{decade}[0-9]"
        for century in ("19", "20")
        for decade in range(10)
        if int(f"{century}{decade}9") <= last
    )
    tail = f"{str(last)[:3]}[0-{str(last)[3]}]" if last % 10 != 9 else ""
    years = "|".join(part for part in (decades, tail) if part)
    return rf"^(?:{years})-[0-9]{{2}}-[0-9]{{2}}$"


BIRTH_DATE_PATTERN = _birth_year_pattern()


def _birth_date_shape(value: object) -> object:
    if isinstance(value, str) and not re.match(BIRTH_DATE_PATTERN, value):
        raise ValueError("birth date must be a date from 1900 up to last year, YYYY-MM-DD")
    return value


Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN), AfterValidator(_phone)]
Name = Annotated[str, StringConstraints(max_length=200, pattern=SINGLE_LINE), Stripped]
Text = Annotated[str, StringConstraints(max_length=200, pattern=SINGLE_LINE), Stripped]
ShortText = Annotated[str, StringConstraints(max_length=20, pattern=SINGLE_LINE), Stripped]
AreaText = Annotated[str, StringConstraints(max_length=100, pattern=SINGLE_LINE), Stripped]
Label = Annotated[str, StringConstraints(max_length=60, pattern=NO_CONTROL), Stripped]
Complement = Annotated[str, StringConstraints(max_length=100, pattern=NO_CONTROL), Stripped]
BirthDate = Annotated[
    Date,
    BeforeValidator(_birth_date_shape),
    WithJsonSchema({"type": "string", "format": "date", "pattern": BIRTH_DATE_PATTERN}),
]
Cpf = Annotated[
    str,
    StringConstraints(pattern=CPF_PATTERN),
    WithJsonSchema(
        {
            "type": "string",
            "format": "cpf",
            "pattern": CPF_PATTERN,
            "description": "A CPF with valid check digits (not one digit repeated eleven "
            "times), written 123.456.789-09 or 12345678909.",
            "examples": ["529.982.247-25"],
        }
    ),
]
Uuid = Uuid7


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
    """Fields given change; `null` clears phone, CPF and birth date (a name stays)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    phone: Phone | None = None
    cpf: Cpf | None = None
    birth_date: BirthDate | None = None


class AddressCreate(BaseModel):
    """A Brazilian address; the CEP must lie in the state's Correios ranges."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": CEP_MATCHES_STATE})

    label: Label | None = None
    recipient: Text
    street: Text
    number: ShortText
    complement: Complement | None = None
    district: AreaText
    city: AreaText
    state: Uf
    cep: Cep
    country: Literal["BR"] = "BR"
    is_default: StrictBool = False


class AddressUpdate(BaseModel):
    """Fields given change (`null` leaves a required field as it is). A CEP and a state that
    disagree, with each other or with the address's other one, are a 409 conflict."""

    model_config = ConfigDict(extra="forbid")

    label: Label | None = None
    recipient: Text | None = None
    street: Text | None = None
    number: ShortText | None = None
    complement: Complement | None = None
    district: AreaText | None = None
    city: AreaText | None = None
    state: Uf | None = None
    cep: Cep | None = None
    is_default: StrictBool | None = None


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
    """Repeated channels count once; `sms` needs a phone on the profile (409 otherwise)."""
    language: Language | None = None
    marketing_opt_in: StrictBool | None = None


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
    """One service's part of the export: its data, or why it is missing this time."""

    status: Literal["ok", "unavailable"]
    """`ok`, or `unavailable` when the owning service could not answer right now (the export
    is then incomplete: ask again later)."""
    data: dict[str, Any] | None = None
    """The service's own export document (`ok` only)."""
    error: str | None = None
    """What went wrong (`unavailable` only): the error class, `HTTP <status>`, or the shape."""


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
