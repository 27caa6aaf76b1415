"""Events of the auth service (topic `auth.events`, keyed by user id)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import EmailStr

from contracts import topics
from contracts.base import Event
from contracts.types import Id, UtcDatetime


class UserRegistered(Event):
    """A new account exists; other services create their view of the user."""

    ce_type: ClassVar[str] = "shop.auth.user_registered.v1"
    topic: ClassVar[str] = topics.AUTH
    key_field: ClassVar[str] = "user_id"

    user_id: Id
    email: EmailStr
    name: str
    registered_at: UtcDatetime


class PasswordResetRequested(Event):
    """Someone asked to reset the password of an existing account.

    Carries the single-use token so notifications can send the link; auth stores only its hash.
    """

    ce_type: ClassVar[str] = "shop.auth.password_reset_requested.v1"
    topic: ClassVar[str] = topics.AUTH
    key_field: ClassVar[str] = "user_id"

    user_id: Id
    email: EmailStr
    reset_token: str
    expires_at: UtcDatetime


class PasswordChanged(Event):
    ce_type: ClassVar[str] = "shop.auth.password_changed.v1"
    topic: ClassVar[str] = topics.AUTH
    key_field: ClassVar[str] = "user_id"

    user_id: Id
    changed_at: UtcDatetime
    via_reset: bool = False
