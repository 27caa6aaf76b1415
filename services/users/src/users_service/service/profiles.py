"""Profiles, notification preferences and account deletion."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.events.auth import UserRegistered
from contracts.events.users import (
    UserDeletionRequested,
    UserPreferencesChanged,
    UserProfileUpdated,
)
from shopkit.outbox import Outbox
from shopkit.security import Principal, require_recent_sign_in
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from users_service import cpf, repository
from users_service.config import UsersSettings
from users_service.errors import (
    CpfTakenError,
    InvalidCpfError,
    PhoneRequiredError,
    ProfileDeletedError,
    ProfileNotFoundError,
)
from users_service.models import Profile, messaging
from users_service.schemas import (
    DeletionAccepted,
    PreferencesPublic,
    PreferencesUpdate,
    ProfilePublic,
    ProfileUpdate,
)

DELETED_NAME = "[deleted]"


async def create_from_registration(*, session: AsyncSession, event: UserRegistered) -> bool:
    """A profile for a new account; a redelivery (or a deleted account's replay) is a no-op."""
    return await repository.insert_profile_if_new(
        session,
        {
            "user_id": event.user_id,
            "email": str(event.email),
            "name": event.name,
            "phone": None,
            "cpf": None,
            "birth_date": None,
            "channels": ["email"],
            "language": "pt-BR",
            "marketing_opt_in": False,
            "created_at": event.registered_at,
            "updated_at": event.registered_at,
        },
    )


async def load(session: AsyncSession, user_id: str, *, for_update: bool = False) -> Profile:
    """The caller's live profile, or the reason there is none."""
    found = await repository.profile(session, user_id, for_update=for_update)
    if found is None:
        # The account may be seconds old: its UserRegistered has not reached us yet.
        raise ProfileNotFoundError("no profile for this account (yet)")
    if found.deleted_at is not None:
        raise ProfileDeletedError("this account was deleted")
    return found


def to_public(profile: Profile) -> ProfilePublic:
    return ProfilePublic(
        id=profile.user_id,
        email=profile.email,
        name=profile.name,
        phone=profile.phone,
        cpf=cpf.format_cpf(profile.cpf) if profile.cpf else None,
        birth_date=profile.birth_date,
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )


async def get(*, session: AsyncSession, user_id: str) -> ProfilePublic:
    return to_public(await load(session, user_id))


async def update(*, session: AsyncSession, user_id: str, changes: ProfileUpdate) -> ProfilePublic:
    profile = await load(session, user_id, for_update=True)
    given = changes.model_fields_set
    if "name" in given and changes.name is not None:
        profile.name = changes.name
    if "phone" in given:
        if changes.phone is None and "sms" in profile.channels:
            raise PhoneRequiredError("remove sms from your notification channels first")
        profile.phone = changes.phone
    if "cpf" in given:
        profile.cpf = await _checked_cpf(session, user_id, changes.cpf)
        try:
            # Now, not at the commit: a concurrent save of the same CPF passed the check above
            # too, and the unique index is what decides (a 500 at the commit before).
            await session.flush()
        except IntegrityError as exc:
            raise CpfTakenError("this CPF is registered to another account") from exc
    if "birth_date" in given:
        profile.birth_date = changes.birth_date
    profile.updated_at = datetime.now(UTC)
    await Outbox(session, messaging.outbox).publish(
        UserProfileUpdated(
            user_id=user_id, name=profile.name, phone=profile.phone, updated_at=profile.updated_at
        )
    )
    return to_public(profile)


async def _checked_cpf(session: AsyncSession, user_id: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        digits = cpf.normalize_cpf(value)
    except cpf.InvalidCpfError as exc:
        raise InvalidCpfError(str(exc)) from exc
    owner = await repository.cpf_owner(session, digits)
    if owner is not None and owner != user_id:
        raise CpfTakenError("this CPF is registered to another account")
    return digits


def preferences_of(profile: Profile) -> PreferencesPublic:
    return PreferencesPublic(
        channels=profile.channels,  # type: ignore[arg-type]
        language=profile.language,  # type: ignore[arg-type]
        marketing_opt_in=profile.marketing_opt_in,
    )


async def get_preferences(*, session: AsyncSession, user_id: str) -> PreferencesPublic:
    return preferences_of(await load(session, user_id))


async def update_preferences(
    *, session: AsyncSession, user_id: str, changes: PreferencesUpdate
) -> PreferencesPublic:
    profile = await load(session, user_id, for_update=True)
    if changes.channels is not None:
        channels: list[str] = list(dict.fromkeys(changes.channels))
        if "sms" in channels and not profile.phone:
            raise PhoneRequiredError("add a phone number to your profile before choosing sms")
        profile.channels = channels
    if changes.language is not None:
        profile.language = changes.language
    if changes.marketing_opt_in is not None:
        profile.marketing_opt_in = changes.marketing_opt_in
    profile.updated_at = datetime.now(UTC)
    preferences = preferences_of(profile)
    await Outbox(session, messaging.outbox).publish(
        UserPreferencesChanged(
            user_id=user_id,
            channels=preferences.channels,
            language=preferences.language,
            marketing_opt_in=preferences.marketing_opt_in,
            phone=profile.phone,
            changed_at=profile.updated_at,
        )
    )
    return preferences


async def request_deletion(
    *, session: AsyncSession, settings: UsersSettings, principal: Principal
) -> DeletionAccepted:
    """Anonymise the profile here and ask every other service to do the same (one event,
    committed with the local change). It cannot be undone, so a bearer token alone (a device
    left signed in, a session refreshed for weeks) is not enough: the caller must have signed
    in recently."""
    require_recent_sign_in(principal, max_age_seconds=settings.deletion_sign_in_max_age_seconds)
    user_id = principal.user_id
    profile = await load(session, user_id, for_update=True)
    now = datetime.now(UTC)
    await repository.delete_all_of(session, user_id)
    profile.email = None
    profile.name = DELETED_NAME
    profile.phone = None
    profile.cpf = None
    profile.birth_date = None
    profile.channels = []
    profile.marketing_opt_in = False
    profile.deleted_at = now
    profile.updated_at = now
    await Outbox(session, messaging.outbox).publish(
        UserDeletionRequested(user_id=user_id, requested_at=now)
    )
    return DeletionAccepted(user_id=user_id, requested_at=now)
