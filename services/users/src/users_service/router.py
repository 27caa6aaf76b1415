from __future__ import annotations

import httpx
from fastapi import APIRouter, Request, Response, status
from shopkit.db import SessionDep
from shopkit.params import Uuid7
from shopkit.problems import UnauthorizedError, responses
from shopkit.security import CurrentUser, ReauthenticationRequiredError

from users_service.config import UsersSettings
from users_service.errors import (
    AddressNotFoundError,
    AddressStateConflictError,
    CepStateMismatchError,
    CpfTakenError,
    InvalidCpfError,
    PhoneRequiredError,
    ProfileDeletedError,
    ProfileNotFoundError,
    TooManyAddressesError,
    UnknownProductError,
    WishlistFullError,
)
from users_service.schemas import (
    AddressCreate,
    AddressList,
    AddressPublic,
    AddressUpdate,
    DataExport,
    DeletionAccepted,
    PreferencesPublic,
    PreferencesUpdate,
    ProfilePublic,
    ProfileUpdate,
    WishlistAdd,
    WishlistList,
)
from users_service.service import addresses, export, profiles, wishlist

router = APIRouter(prefix="/api/users", tags=["users"])

PROFILE_ERRORS = (UnauthorizedError, ProfileNotFoundError, ProfileDeletedError)


def _settings(request: Request) -> UsersSettings:
    settings: UsersSettings = request.app.state.settings
    return settings


@router.get("/me", response_model=ProfilePublic, responses=responses(*PROFILE_ERRORS))
async def get_me(session: SessionDep, principal: CurrentUser) -> ProfilePublic:
    return await profiles.get(session=session, user_id=principal.user_id)


@router.patch(
    "/me",
    response_model=ProfilePublic,
    responses=responses(*PROFILE_ERRORS, InvalidCpfError, CpfTakenError, PhoneRequiredError),
)
async def update_me(
    body: ProfileUpdate, session: SessionDep, principal: CurrentUser
) -> ProfilePublic:
    """Name, phone (E.164), CPF (check digits verified) and birth date; null clears a field."""
    return await profiles.update(session=session, user_id=principal.user_id, changes=body)


@router.delete(
    "/me",
    response_model=DeletionAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(*PROFILE_ERRORS, ReauthenticationRequiredError),
)
async def delete_me(
    session: SessionDep, principal: CurrentUser, request: Request
) -> DeletionAccepted:
    """Delete the account: personal data is anonymised here and, via UserDeletionRequested,
    in every other service holding some (auth, catalog, orders, payments, shipping,
    notifications); what accounting must keep (amounts, ids) stays. Needs a sign-in at most
    `deletion_sign_in_max_age_seconds` old (10 minutes by default); an older one is a 401
    `reauthentication-required` whose `WWW-Authenticate` asks for a new sign-in (RFC 9470)."""
    return await profiles.request_deletion(
        session=session, settings=_settings(request), principal=principal
    )


@router.get(
    "/me/preferences", response_model=PreferencesPublic, responses=responses(*PROFILE_ERRORS)
)
async def get_preferences(session: SessionDep, principal: CurrentUser) -> PreferencesPublic:
    return await profiles.get_preferences(session=session, user_id=principal.user_id)


@router.patch(
    "/me/preferences",
    response_model=PreferencesPublic,
    responses=responses(*PROFILE_ERRORS, PhoneRequiredError),
)
@router.put(
    "/me/preferences",
    response_model=PreferencesPublic,
    responses=responses(*PROFILE_ERRORS, PhoneRequiredError),
)
async def update_preferences(
    body: PreferencesUpdate, session: SessionDep, principal: CurrentUser
) -> PreferencesPublic:
    """Notification channels, language and marketing opt-in (announced as
    UserPreferencesChanged)."""
    return await profiles.update_preferences(
        session=session, user_id=principal.user_id, changes=body
    )


@router.get("/me/addresses", response_model=AddressList, responses=responses(*PROFILE_ERRORS))
async def list_addresses(session: SessionDep, principal: CurrentUser) -> AddressList:
    return await addresses.list_mine(session=session, user_id=principal.user_id)


@router.post(
    "/me/addresses",
    response_model=AddressPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(*PROFILE_ERRORS, CepStateMismatchError, TooManyAddressesError),
)
async def create_address(
    body: AddressCreate, session: SessionDep, principal: CurrentUser, request: Request
) -> AddressPublic:
    return await addresses.create(
        session=session, settings=_settings(request), user_id=principal.user_id, data=body
    )


@router.get(
    "/me/addresses/{address_id}",
    response_model=AddressPublic,
    responses=responses(UnauthorizedError, AddressNotFoundError),
)
async def get_address(
    address_id: Uuid7, session: SessionDep, principal: CurrentUser
) -> AddressPublic:
    return await addresses.get(session=session, user_id=principal.user_id, address_id=address_id)


@router.patch(
    "/me/addresses/{address_id}",
    response_model=AddressPublic,
    responses=responses(*PROFILE_ERRORS, AddressNotFoundError, AddressStateConflictError),
)
async def update_address(
    address_id: Uuid7, body: AddressUpdate, session: SessionDep, principal: CurrentUser
) -> AddressPublic:
    """Change fields; `is_default: true` makes it the default (there is always exactly one)."""
    try:
        return await addresses.update(
            session=session, user_id=principal.user_id, address_id=address_id, data=body
        )
    except CepStateMismatchError as exc:
        # The CEP or state given disagrees with the other one (given or stored): the change
        # conflicts with the address as it is, which no schema of the request can express.
        raise AddressStateConflictError(exc.detail, **exc.extensions) from exc


@router.delete(
    "/me/addresses/{address_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(*PROFILE_ERRORS, AddressNotFoundError),
)
async def delete_address(address_id: Uuid7, session: SessionDep, principal: CurrentUser) -> None:
    await addresses.delete(session=session, user_id=principal.user_id, address_id=address_id)


@router.get("/me/wishlist", response_model=WishlistList, responses=responses(*PROFILE_ERRORS))
async def get_wishlist(session: SessionDep, principal: CurrentUser) -> WishlistList:
    return await wishlist.list_mine(session=session, user_id=principal.user_id)


@router.post(
    "/me/wishlist",
    response_model=WishlistList,
    status_code=status.HTTP_201_CREATED,
    responses=responses(*PROFILE_ERRORS, UnknownProductError, WishlistFullError),
)
async def add_to_wishlist(
    body: WishlistAdd, session: SessionDep, principal: CurrentUser, request: Request
) -> WishlistList:
    return await wishlist.add(
        session=session,
        settings=_settings(request),
        user_id=principal.user_id,
        product_id=body.product_id,
    )


@router.delete(
    "/me/wishlist/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(*PROFILE_ERRORS),
)
async def remove_from_wishlist(
    product_id: Uuid7, session: SessionDep, principal: CurrentUser
) -> None:
    await wishlist.remove(session=session, user_id=principal.user_id, product_id=product_id)


@router.get("/me/export", response_model=DataExport, responses=responses(*PROFILE_ERRORS))
async def export_my_data(
    session: SessionDep, principal: CurrentUser, request: Request
) -> DataExport:
    """Everything the platform holds about the caller: this service's data plus each
    service's own export (a section says `unavailable` if that service cannot answer)."""
    http: httpx.AsyncClient = request.app.state.export_http
    return await export.export(
        session=session,
        settings=_settings(request),
        http=http,
        user_id=principal.user_id,
        authorization=request.headers.get("Authorization", ""),
    )
