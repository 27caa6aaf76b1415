"""Events of the users service (topic `users.events`, keyed by user id)."""

from __future__ import annotations

from typing import ClassVar, Literal

from contracts import topics
from contracts.base import Event
from contracts.types import Id, UtcDatetime

Channel = Literal["email", "sms"]
Language = Literal["pt-BR", "en"]


class UserProfileUpdated(Event):
    ce_type: ClassVar[str] = "shop.users.user_profile_updated.v1"
    topic: ClassVar[str] = topics.USERS
    key_field: ClassVar[str] = "user_id"

    user_id: Id
    name: str
    phone: str | None = None
    updated_at: UtcDatetime


class UserPreferencesChanged(Event):
    """Which channels and language a user wants notifications in."""

    ce_type: ClassVar[str] = "shop.users.user_preferences_changed.v1"
    topic: ClassVar[str] = topics.USERS
    key_field: ClassVar[str] = "user_id"

    user_id: Id
    channels: list[Channel]
    language: Language
    marketing_opt_in: bool
    phone: str | None = None
    changed_at: UtcDatetime


class UserDeletionRequested(Event):
    """The user asked for their account to be deleted: every service anonymises its data."""

    ce_type: ClassVar[str] = "shop.users.user_deletion_requested.v1"
    topic: ClassVar[str] = topics.USERS
    key_field: ClassVar[str] = "user_id"

    user_id: Id
    requested_at: UtcDatetime
