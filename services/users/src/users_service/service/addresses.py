"""The address book: CEPs checked by the Correios rules, exactly one default address."""

from __future__ import annotations

from datetime import UTC, datetime

from shopkit import cep
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import new_id
from users_service import repository
from users_service.config import UsersSettings
from users_service.errors import (
    AddressNotFoundError,
    CepStateMismatchError,
    InvalidCepError,
    TooManyAddressesError,
)
from users_service.models import Address
from users_service.schemas import AddressCreate, AddressList, AddressPublic, AddressUpdate
from users_service.service.profiles import load


def checked_cep(value: str, state: str) -> str:
    try:
        normalized = cep.normalize_cep(value)
    except cep.InvalidCepError as exc:
        raise InvalidCepError(str(exc)) from exc
    region = cep.region_of(normalized)
    if region.state != state.upper():
        raise CepStateMismatchError(
            f"CEP {cep.format_cep(normalized)} is in {region.state}, not {state.upper()}",
            expected_state=region.state,
        )
    return normalized


def to_public(address: Address) -> AddressPublic:
    return AddressPublic(
        id=address.id,
        label=address.label,
        recipient=address.recipient,
        street=address.street,
        number=address.number,
        complement=address.complement,
        district=address.district,
        city=address.city,
        state=address.state,
        cep=address.cep,
        country=address.country,
        is_default=address.is_default,
        created_at=address.created_at,
        updated_at=address.updated_at,
    )


async def list_mine(*, session: AsyncSession, user_id: str) -> AddressList:
    await load(session, user_id)
    return AddressList(items=[to_public(a) for a in await repository.addresses(session, user_id)])


async def get(*, session: AsyncSession, user_id: str, address_id: str) -> AddressPublic:
    found = await repository.address(session, user_id, address_id)
    if found is None:
        raise AddressNotFoundError("no such address in your address book")
    return to_public(found)


async def create(
    *, session: AsyncSession, settings: UsersSettings, user_id: str, data: AddressCreate
) -> AddressPublic:
    # Locking the profile serialises one user's address changes (count and default rules).
    await load(session, user_id, for_update=True)
    normalized = checked_cep(data.cep, data.state)
    count = await repository.count_addresses(session, user_id)
    if count >= settings.max_addresses:
        raise TooManyAddressesError(f"at most {settings.max_addresses} addresses")
    make_default = data.is_default or count == 0
    if make_default:
        await repository.clear_default(session, user_id)
    now = datetime.now(UTC)
    address = Address(
        id=new_id(),
        user_id=user_id,
        **data.model_dump(exclude={"cep", "is_default"}),
        cep=normalized,
        is_default=make_default,
        created_at=now,
        updated_at=now,
    )
    session.add(address)
    await session.flush()
    return to_public(address)


async def update(
    *, session: AsyncSession, user_id: str, address_id: str, data: AddressUpdate
) -> AddressPublic:
    await load(session, user_id, for_update=True)
    address = await repository.address(session, user_id, address_id)
    if address is None:
        raise AddressNotFoundError("no such address in your address book")
    changes = data.model_dump(exclude_unset=True)
    for required in ("recipient", "street", "number", "district", "city", "state", "cep"):
        if required in changes and changes[required] is None:
            del changes[required]
    state = changes.get("state", address.state)
    if "cep" in changes or "state" in changes:
        changes["cep"] = checked_cep(changes.get("cep", address.cep), state)
    wants_default = changes.pop("is_default", None)
    for field, value in changes.items():
        setattr(address, field, value)
    if wants_default and not address.is_default:
        await repository.clear_default(session, user_id)
        address.is_default = True
    address.updated_at = datetime.now(UTC)
    await session.flush()
    return to_public(address)


async def delete(*, session: AsyncSession, user_id: str, address_id: str) -> None:
    await load(session, user_id, for_update=True)
    address = await repository.address(session, user_id, address_id)
    if address is None:
        raise AddressNotFoundError("no such address in your address book")
    was_default = address.is_default
    await session.delete(address)
    await session.flush()
    if was_default:
        # The book keeps a default while it has addresses: the newest one takes over.
        successor = await repository.newest_address(session, user_id)
        if successor is not None:
            successor.is_default = True
