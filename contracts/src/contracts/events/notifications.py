"""Events of the notifications service (topic `notifications.events`, keyed by user id)."""

from __future__ import annotations

from typing import ClassVar, Literal

from contracts import topics
from contracts.base import Event
from contracts.types import Id, UtcDatetime

DeliveryChannel = Literal["email", "sms"]


class NotificationSent(Event):
    ce_type: ClassVar[str] = "shop.notifications.notification_sent.v1"
    topic: ClassVar[str] = topics.NOTIFICATIONS
    key_field: ClassVar[str] = "user_id"

    notification_id: Id
    user_id: Id
    template: str
    channel: DeliveryChannel
    source_event_id: Id
    sent_at: UtcDatetime


class NotificationFailed(Event):
    ce_type: ClassVar[str] = "shop.notifications.notification_failed.v1"
    topic: ClassVar[str] = topics.NOTIFICATIONS
    key_field: ClassVar[str] = "user_id"

    notification_id: Id
    user_id: Id
    template: str
    channel: DeliveryChannel
    source_event_id: Id
    error: str
    attempts: int
    failed_at: UtcDatetime
