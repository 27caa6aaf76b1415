"""A real deployment sets the secrets of the backends it uses, and only those."""

from __future__ import annotations

import pytest
from notifications_service.config import NotificationsSettings

VAULT = "a-real-secret-from-the-vault-9f2c"


def test_production_asks_only_for_the_secrets_its_backends_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_ENVIRONMENT", "production")
    monkeypatch.setenv("NOTIFICATIONS_TWILIO_AUTH_TOKEN", VAULT)

    # SendGrid for email: no SMTP password to invent.
    with pytest.raises(ValueError, match="sendgrid_api_key"):
        NotificationsSettings(email_backend="sendgrid")
    monkeypatch.setenv("NOTIFICATIONS_SENDGRID_API_KEY", VAULT)
    assert NotificationsSettings(email_backend="sendgrid").smtp_password.get_secret_value() == ""

    # An SMTP relay that takes no login needs no password either; one that does, needs it.
    assert NotificationsSettings(email_backend="smtp").environment == "production"
    with pytest.raises(ValueError, match="smtp_password"):
        NotificationsSettings(email_backend="smtp", smtp_username="shop")

    # Without SMS the Twilio token is not read.
    monkeypatch.delenv("NOTIFICATIONS_TWILIO_AUTH_TOKEN")
    with pytest.raises(ValueError, match="twilio_auth_token"):
        NotificationsSettings(email_backend="smtp")
    assert not NotificationsSettings(email_backend="smtp", sms_enabled=False).sms_enabled
