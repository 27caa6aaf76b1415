from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class DeliveryPublic(BaseModel):
    id: str
    template: str
    channel: str
    status: str
    sent_at: datetime | None
    event_id: str
    """The id of the event that caused the message."""
    created_at: datetime
    attempts: int


class DeliveryList(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None = None


class AttemptPublic(BaseModel):
    attempt: int
    outcome: str
    error: str | None
    at: datetime


class DeliveryAdmin(DeliveryPublic):
    user_id: str | None
    source_type: str
    address: str | None
    last_error: str | None
    next_attempt_at: datetime
    provider_message_id: str | None
    history: list[AttemptPublic]


class DeliveryAdminList(BaseModel):
    items: list[DeliveryAdmin]
    next_cursor: str | None = None


class ContactPublic(BaseModel):
    email: str | None
    name: str | None
    phone: str | None
    language: str | None
    channels: list[str] | None


class NotificationsExport(BaseModel):
    """Everything notifications holds about the caller (LGPD/GDPR access request)."""

    user_id: str
    contact: ContactPublic | None
    deliveries: list[DeliveryAdmin]
