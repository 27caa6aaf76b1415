"""A sender that died mid-send, the admin view, export and account deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.events.auth import UserRegistered
from contracts.events.users import UserDeletionRequested
from notifications_service.models import Delivery
from shopkit.app import sessionmaker_of
from shopkit.testing import eventually, publish

from contracts import Envelope, new_id

from . import events
from .conftest import Running, mailpit_messages, registered, unique_email


def _admin(service: Running) -> dict[str, str]:
    return service.tokens.headers(new_id(), ("customer", "admin"))


async def _delivery(service: Running, user_id: str) -> dict[str, Any]:
    response = await service.client.get(
        "/api/notifications/admin/deliveries", params={"user_id": user_id}, headers=_admin(service)
    )
    [item] = response.json()["items"]
    result: dict[str, Any] = item
    return result


async def test_a_send_interrupted_by_a_crash_is_not_repeated(mailer: Running) -> None:
    email = unique_email("crash")
    user_id = new_id()
    now = datetime.now(UTC)
    # What a sender leaves behind when it dies after claiming (and maybe sending) a message.
    async with sessionmaker_of(mailer.app)() as session, session.begin():
        session.add(
            Delivery(
                id=new_id(),
                user_id=user_id,
                order_id=None,
                source_event_id=new_id(),
                source_type="shop.auth.user_registered.v1",
                template="welcome",
                channel="email",
                address=email,
                language=None,
                context={"name": "Crash"},
                status="sending",
                attempts=1,
                next_attempt_at=now,
                lease_until=now - timedelta(seconds=1),
                created_at=now,
                updated_at=now,
            )
        )

    async def in_doubt() -> dict[str, Any] | None:
        found = await _delivery(mailer, user_id)
        return found if found["status"] == "uncertain" else None

    delivery = await eventually(in_doubt, timeout=30, interval=0.2)
    assert await mailpit_messages(email) == []  # not resent on its own

    resend = await mailer.client.post(
        f"/api/notifications/admin/deliveries/{delivery['id']}/resend", headers=_admin(mailer)
    )
    assert resend.status_code == 200

    async def sent() -> bool:
        return bool((await _delivery(mailer, user_id))["status"] == "sent")

    await eventually(sent, timeout=30, interval=0.2)
    assert len(await mailpit_messages(email)) == 1
    again = await mailer.client.post(
        f"/api/notifications/admin/deliveries/{delivery['id']}/resend", headers=_admin(mailer)
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_the_admin_view_needs_the_admin_role(mailer: Running) -> None:
    customer = mailer.tokens.headers(new_id())
    listed = await mailer.client.get("/api/notifications/admin/deliveries", headers=customer)
    assert listed.status_code == 403
    assert listed.headers["content-type"] == "application/problem+json"
    anonymous = await mailer.client.get("/api/notifications")
    assert anonymous.status_code == 401
    bad_status = await mailer.client.get(
        "/api/notifications/admin/deliveries", params={"status": "bogus"}, headers=_admin(mailer)
    )
    assert bad_status.status_code == 422


async def test_the_log_shows_only_the_callers_messages(mailer: Running) -> None:
    mine, theirs = registered(unique_email()), registered(unique_email())
    await publish(mailer.settings.kafka_namespace, mine, theirs)
    await mailer.settled(mine.user_id, count=1)
    await mailer.settled(theirs.user_id, count=1)
    items = await mailer.deliveries(mine.user_id)
    assert len(items) == 1
    assert set(items[0]) >= {"template", "channel", "status", "sent_at", "event_id"}


async def test_deletion_forgets_the_contact_and_stops_messages(mailer: Running) -> None:
    ns = mailer.settings.kafka_namespace
    email = unique_email("gone")
    user = registered(email, name="Carlos Gone")
    await publish(ns, user)
    await mailer.settled(user.user_id, count=1)
    headers = mailer.tokens.headers(user.user_id)
    before = (await mailer.client.get("/api/notifications/me/export", headers=headers)).json()
    assert before["contact"]["email"] == email
    assert before["deliveries"][0]["address"] == email

    await publish(ns, UserDeletionRequested(user_id=user.user_id, requested_at=datetime.now(UTC)))

    async def forgotten() -> dict[str, Any] | None:
        body = (await mailer.client.get("/api/notifications/me/export", headers=headers)).json()
        return body if body["contact"]["email"] is None else None

    after = await eventually(forgotten, timeout=30, interval=0.3)
    assert after["contact"] == {
        "email": None,
        "name": None,
        "phone": None,
        "language": None,
        "channels": [],
    }
    assert after["deliveries"][0]["address"] is None
    assert "Carlos" not in str(after)

    # Late events about the deleted account queue nothing; a marker shows they were handled.
    late = Envelope(data=events.order_confirmed(user.user_id))
    marker = registered(unique_email())
    replayed = UserRegistered(
        user_id=user.user_id, email=email, name="Carlos Gone", registered_at=user.registered_at
    )
    await publish(ns, late, replayed, marker)
    await mailer.settled(marker.user_id, count=1)
    assert len(await mailer.deliveries(user.user_id)) == 1
    assert len(await mailpit_messages(email)) == 1
