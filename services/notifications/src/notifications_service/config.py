from __future__ import annotations

import socket
from typing import Literal

from pydantic import Field, SecretStr
from shopkit.settings import ServiceSettings, settings_config


class NotificationsSettings(ServiceSettings):
    """Settings of the notifications service (env prefix `NOTIFICATIONS_`, then `SHOP_`)."""

    model_config = settings_config("NOTIFICATIONS_")
    service_name = "notifications"

    email_backend: Literal["smtp", "sendgrid"] = "smtp"
    email_from_address: str = "no-reply@shop.local"
    email_from_name: str = "Shop"
    message_id_domain: str = "shop.local"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    smtp_local_hostname: str = Field(default_factory=socket.getfqdn)
    """The name this sender gives in EHLO; looked up once here, not per message (the SMTP
    client would otherwise resolve it on a thread for every connection)."""
    smtp_connections: int = Field(default=8, ge=1)
    """Messages sent at once, each on a connection of its own; the others wait for one."""
    smtp_keep_connections: bool = True
    """Keep connections open between messages. A kept one is checked with NOOP before its next
    message, so one the server dropped meanwhile is replaced before anything is handed over."""

    sendgrid_base_url: str = "https://api.sendgrid.com"
    sendgrid_api_key: SecretStr = SecretStr("local_development_only-sendgrid-key")

    sms_enabled: bool = True
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: SecretStr = SecretStr("local_development_only-twilio-token")
    twilio_from_number: str = "+15005550006"
    http_timeout_seconds: float = 10.0

    storefront_url: str = "http://127.0.0.1:8000"
    """Base of the links in messages (password reset, order pages)."""
    default_language: Literal["pt-BR", "en"] = "pt-BR"

    dispatch_enabled: bool = True
    dispatch_poll_seconds: float = Field(default=1.0, gt=0)
    dispatch_batch_size: int = Field(default=20, ge=1)
    retry_base_seconds: float = Field(default=5.0, gt=0)
    """The wait after the first refused attempt; it doubles with each one after."""
    retry_max_seconds: float = Field(default=900.0, gt=0)
    """The longest wait between two attempts, once the doubling has reached it."""
    retry_window_seconds: float = Field(default=24 * 3600.0, gt=0)
    """How long after its first attempt a message refused for now is still retried. A provider
    outage, or credentials it refuses until an operator fixes them, last hours rather than
    minutes: every message queued meanwhile waits for it instead of failing for good."""
    max_attempts: int = Field(default=500, ge=1)
    """A second bound, on the attempts one message records (each is a row of its history), for a
    backoff set so short that the window alone would allow thousands. With the defaults the
    window ends first (about 100 attempts in 24 h): raise this along with a shorter
    `retry_max_seconds`, or messages give up before the window ends."""
    send_lease_seconds: float = Field(default=120.0, gt=0)
    """A claimed delivery not marked within this is in doubt (the sender died mid-send).
    Must exceed the longest possible send: both transports time out well before it."""
    recipient_wait_seconds: float = Field(default=3600.0, gt=0)
    """How long a message waits for its recipient's contact details to arrive."""

    def unused_secrets(self) -> frozenset[str]:
        unused = set()
        if self.email_backend != "smtp" or not self.smtp_username:
            unused.add("smtp_password")  # another backend, or a relay that takes no login
        if self.email_backend != "sendgrid":
            unused.add("sendgrid_api_key")
        if not self.sms_enabled:
            unused.add("twilio_auth_token")
        return frozenset(unused)
