"""Reading orders: ownership (BOLA), pagination, admin listings, timeline, stuck sagas."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from contracts.events.auth import PasswordResetRequested, UserRegistered
from contracts.events.orders import OrderCancellationRequested, OrderConfirmed, OrderPlaced
from contracts.events.payments import NextAction, PaymentActionRequired
from orders_service.service import transitions
from orders_service.service.paging import encode_cursor
from shopkit.params import DATE_TIME_PATTERN
from shopkit.testing import eventually

from contracts import new_id

from .support import Harness, assert_problem


async def test_another_users_order_is_not_found(harness: Harness) -> None:
    order, alice = await harness.placed_order()
    bob = harness.user()
    for path in (f"/api/orders/{order['id']}", f"/api/orders/{order['id']}/timeline"):
        missing = assert_problem(
            await harness.client.get(path, headers=bob), 404, "order-not-found"
        )
        unknown = assert_problem(
            await harness.client.get(path.replace(order["id"], new_id()), headers=bob), 404
        )
        assert missing["title"] == unknown["title"]  # indistinguishable from a missing order
    assert_problem(await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=bob), 404)
    assert (await harness.order(order["id"], alice))["status"] == "PENDING"  # untouched
    assert all(
        o["id"] != order["id"]
        for o in (await harness.client.get("/api/orders", headers=bob)).json()["items"]
    )
    assert_problem(await harness.client.get("/api/orders/not-a-uuid", headers=bob), 422)
    assert_problem(await harness.client.get(f"/api/orders/{order['id']}"), 401)


async def test_admin_reads_any_order_with_ignored_events(harness: Harness) -> None:
    order, _ = await harness.placed_order()
    body = await harness.order(order["id"], harness.admin())
    assert body["id"] == order["id"] and body["ignored_events"] == []
    customer_view = await harness.order(order["id"], harness.tokens.headers(order["user_id"]))
    assert customer_view["ignored_events"] is None


async def test_own_orders_are_listed_newest_first_by_cursor(harness: Harness) -> None:
    user = harness.user()
    ids = [(await harness.placed_order(user))[0]["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await harness.client.get("/api/orders", headers=user, params=params)).json()
        assert set(page) == {"items", "next_cursor"}
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    first = (await harness.client.get("/api/orders", headers=user, params={"limit": 1})).json()[
        "items"
    ][0]
    assert first["item_count"] == 2 and first["status"] == "PENDING"
    assert_problem(
        await harness.client.get("/api/orders", headers=user, params={"cursor": "garbage"}),
        404,
        "invalid-cursor",
    )
    assert_problem(
        await harness.client.get("/api/orders", headers=user, params={"cursor": "not base64!"}),
        422,
    )
    assert_problem(await harness.client.get("/api/orders", headers=user, params={"limit": 0}), 422)
    for spelling in _OTHER_UUID_SPELLINGS:
        # uuid.UUID() reads these; the database driver refused them (500)
        assert_problem(
            await harness.client.get(
                "/api/orders", headers=user, params={"cursor": encode_cursor(spelling)}
            ),
            404,
            "invalid-cursor",
        )


_ID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
_OTHER_UUID_SPELLINGS = (
    "{" + _ID + "}",
    "urn:uuid:" + _ID,
    _ID.replace("-", ""),
    _ID.upper(),
    "0190-a1b2-c3d4-7e5f-8a9b-0c1d-2e3f-4a5b",
)


async def test_admin_listing_filters(harness: Harness) -> None:
    admin = harness.admin()
    user = harness.user()
    first, _ = await harness.placed_order(user)
    second, _ = await harness.placed_order(user)
    await harness.client.post(f"/api/orders/{second['id']}/cancel", headers=user)

    def ids(response: Any) -> list[str]:
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["items"]]

    by_user = ids(
        await harness.client.get(
            "/api/orders/admin", headers=admin, params={"user_id": harness.user_id(user)}
        )
    )
    assert by_user == [second["id"], first["id"]]
    cancelled = ids(
        await harness.client.get(
            "/api/orders/admin",
            headers=admin,
            params={"user_id": harness.user_id(user), "status": "CANCELLED"},
        )
    )
    assert cancelled == [second["id"]]
    both = ids(
        await harness.client.get(
            "/api/orders/admin",
            headers=admin,
            params=[
                ("user_id", harness.user_id(user)),
                ("status", "CANCELLED"),
                ("status", "PENDING"),
            ],
        )
    )
    assert both == [second["id"], first["id"]]
    window = ids(
        await harness.client.get(
            "/api/orders/admin",
            headers=admin,
            params={"user_id": harness.user_id(user), "created_from": second["created_at"]},
        )
    )
    assert window == [second["id"]]
    assert_problem(await harness.client.get("/api/orders/admin", headers=user), 403)
    assert_problem(
        await harness.client.get("/api/orders/admin", headers=admin, params={"status": "LOST"}), 422
    )
    # Before the first instant Python holds once in UTC: the driver overflowed (a 500).
    for bound in ("created_from", "created_to"):
        assert_problem(
            await harness.client.get(
                "/api/orders/admin", headers=admin, params={bound: "0001-01-01T00:00:00+14:00"}
            ),
            422,
        )
    schema = (await harness.client.get("/openapi.json")).json()["paths"]["/api/orders/admin"]
    documented = {p["name"]: p["schema"] for p in schema["get"]["parameters"]}
    assert documented["created_to"]["pattern"] == DATE_TIME_PATTERN


async def test_timeline_shows_the_saga_across_services(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    authorized = await harness.authorize(order, reserved)
    await harness.wait_status(order["id"], user, "CONFIRMED")
    confirmed = (await harness.watcher.wait_for(order["id"], OrderConfirmed))[0]
    placed = (await harness.watcher.wait_for(order["id"], OrderPlaced))[0]

    async def complete() -> dict[str, Any] | None:
        response = await harness.client.get(f"/api/orders/{order['id']}/timeline", headers=user)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body if len(body["events"]) >= 5 else None

    timeline = await harness.until(complete)

    events = timeline["events"]
    assert [e["type"] for e in events] == [
        "shop.orders.order_placed.v1",
        "shop.inventory.stock_reserved.v1",
        "shop.payments.payment_authorized.v1",
        "shop.orders.order_confirmed.v1",
        "shop.orders.order_status_changed.v1",
    ]
    by_id = {e["id"]: e for e in events}
    assert by_id[placed.id]["source"] == "/services/orders"
    assert by_id[reserved.id]["source"] == "/services/inventory"
    assert by_id[reserved.id]["causation_id"] == placed.id
    assert by_id[authorized.id]["causation_id"] == reserved.id
    assert by_id[confirmed.id]["causation_id"] == authorized.id
    assert all(e["subject"] == order["id"] and e["time"] for e in events)
    assert all(e["data"] is None for e in events)  # payloads are for admins
    admin_view = (
        await harness.client.get(f"/api/orders/{order['id']}/timeline", headers=harness.admin())
    ).json()
    assert admin_view["events"][0]["data"]["total"] == order["total"]


async def test_timeline_keeps_no_secrets_or_contact_data(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    secret, token, email = f"pi_3DS_secret_{new_id()}", f"reset-{new_id()}", "maria@example.com"
    action = await harness.follow(
        reserved,
        PaymentActionRequired(
            order_id=order["id"],
            payment_id=new_id(),
            provider_payment_id=f"pi_{new_id()[-12:]}",
            next_action=NextAction(
                type="redirect_to_url",
                redirect_url=f"https://hooks.example.com/3ds/{secret}",
                client_secret=secret,
            ),
            amount=order["total"],
            currency=order["currency"],
        ),
    )
    # Other contexts' events in the same flow: found by the timeline by correlation id.
    user_id = harness.user_id(user)
    registered = await harness.follow(
        action,
        UserRegistered(
            user_id=user_id, email=email, name="Joana Registrada", registered_at=datetime.now(UTC)
        ),
    )
    reset = await harness.follow(
        action,
        PasswordResetRequested(
            user_id=user_id,
            email=email,
            reset_token=token,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        ),
    )
    admin = harness.admin()

    async def recorded() -> list[dict[str, Any]] | None:
        response = await harness.client.get(f"/api/orders/{order['id']}/timeline", headers=admin)
        assert response.status_code == 200
        events: list[dict[str, Any]] = response.json()["events"]
        return events if {registered.id, reset.id} <= {e["id"] for e in events} else None

    events = await harness.until(recorded)
    stored = await harness.scalar(
        "SELECT coalesce(jsonb_agg(data), '[]') FROM timeline_events WHERE correlation_id = :id",
        id=order["id"],
    )
    for text in (json.dumps(events), stored if isinstance(stored, str) else json.dumps(stored)):
        assert not any(value in text for value in (secret, token, email, "Joana Registrada")), text
        assert "client_secret" not in text and "reset_token" not in text
    by_id = {e["id"]: e for e in events}
    # The saga is still there with its payloads and causation; the others keep their envelope.
    assert by_id[action.id]["data"]["next_action"] == {"type": "redirect_to_url"}
    assert by_id[action.id]["data"]["amount"] == order["total"]
    assert by_id[action.id]["causation_id"] == reserved.id
    assert by_id[reserved.id]["data"]["order_id"] == order["id"]
    assert by_id[events[0]["id"]]["data"]["total"] == order["total"]
    assert by_id[reset.id]["type"] == "shop.auth.password_reset_requested.v1"
    assert by_id[reset.id]["subject"] == user_id
    assert by_id[reset.id]["causation_id"] == action.id
    assert by_id[reset.id]["data"] == {} and by_id[registered.id]["data"] == {}


async def test_a_waiting_read_answers_when_the_saga_moves(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The saga below can take longer than the default 8 s cap on a loaded machine.
    monkeypatch.setattr(harness.app.state.settings, "max_order_wait_seconds", 60)
    order, user = await harness.placed_order()
    changes = harness.app.state.order_changes
    woken_before = changes.woken
    waiting = asyncio.create_task(
        harness.client.get(
            f"/api/orders/{order['id']}",
            headers=user,
            params={"wait_while": "PENDING", "wait_seconds": 60},
        )
    )

    async def watched() -> bool:
        return order["id"] in changes._waiters or waiting.done()

    await eventually(watched, timeout=30, interval=0.01)  # the request waits before the saga moves
    reserved = await harness.reserve(order)
    await harness.authorize(order, reserved)

    response = await waiting

    assert response.status_code == 200
    assert response.json()["status"] == "CONFIRMED"
    assert changes.woken > woken_before  # woken by the change, not by its timeout


async def test_waiting_reads_keep_orders_private(harness: Harness) -> None:
    order, user = await harness.placed_order()
    params = {"wait_while": "PENDING", "wait_seconds": 8}
    assert_problem(
        await harness.client.get(
            f"/api/orders/{order['id']}", headers=harness.user(), params=params
        ),
        404,
    )
    await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user)
    settled = await harness.client.get(f"/api/orders/{order['id']}", headers=user, params=params)
    assert settled.json()["status"] == "CANCELLED"  # not waited for: it is not PENDING
    assert_problem(
        await harness.client.get(
            f"/api/orders/{order['id']}", headers=user, params={"wait_while": "LOST"}
        ),
        422,
    )


async def test_a_cancellation_request_shipping_never_answers_is_stuck_and_asked_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A confirmed order waits for shipping to stop its parcel (or to report it gone). Left
    unanswered (shipping had no shipment yet: its OrderConfirmed parked), the request waited
    unseen until the two-week fulfilment threshold, and asking again sent nothing."""
    order, user, _ = await harness.confirmed_order()
    asked = await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user)
    assert asked.status_code == 202, asked.text

    async def listed() -> dict[str, Any] | None:
        found: dict[str, Any] | None = (await _stuck(harness)).get(order["id"])
        return found

    entry = await harness.until(listed)
    assert entry["status"] == "CONFIRMED"
    # Listed for the request, not for the two-week fulfilment threshold, and stuck since it.
    requested_at = datetime.fromisoformat(asked.json()["cancellation"]["requested_at"])
    assert entry["reason"] == "cancellation_unanswered"
    assert datetime.fromisoformat(entry["stuck_since"]) == requested_at
    confirmed_at = datetime.fromisoformat(entry["status_changed_at"])
    assert confirmed_at < requested_at
    page = (await harness.client.get("/api/orders/admin/stuck", headers=harness.admin())).json()
    assert page["thresholds"]["CONFIRMED"] == harness.settings.fulfilment_stuck_after_seconds
    assert (
        page["thresholds_by_reason"]["cancellation_unanswered"]
        == harness.settings.saga_stuck_after_seconds
    )
    again = await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user)
    assert again.status_code == 202  # soon after: shipping may still be answering
    assert len(harness.watcher.of_type(order["id"], OrderCancellationRequested)) == 1
    monkeypatch.setattr(transitions, "REASK_AFTER", timedelta(0))  # ... and now it is late
    late = await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user)
    assert late.json()["cancellation"]["status"] == "requested"
    asked_twice = await harness.watcher.wait_for(order["id"], OrderCancellationRequested, 2)
    assert asked_twice[1].data.requested_at == asked_twice[0].data.requested_at


async def _stuck(harness: Harness) -> dict[str, Any]:
    """Every order the admin listing calls stuck now, by id (all pages)."""
    found: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        page = (
            await harness.client.get(
                "/api/orders/admin/stuck", headers=harness.admin(), params=params
            )
        ).json()
        found.update({o["id"]: o for o in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def test_stuck_sagas_are_listed_and_exported(harness: Harness) -> None:
    order, user = await harness.placed_order()
    moving, moving_user = await harness.placed_order()
    await harness.client.post(f"/api/orders/{moving['id']}/cancel", headers=moving_user)

    async def listed() -> dict[str, Any] | None:
        found = await _stuck(harness)
        return found if order["id"] in found else None

    stuck = await harness.until(listed)

    entry = stuck[order["id"]]
    assert entry["status"] == "PENDING"
    assert entry["reason"] == "in_flight"
    assert entry["stuck_since"] == entry["status_changed_at"]
    assert entry["stuck_for_seconds"] >= harness.settings.saga_stuck_after_seconds
    assert moving["id"] not in stuck  # terminal orders are never stuck

    async def exported() -> bool:
        metrics = (await harness.client.get("/metrics")).text
        return any(
            line.startswith('shop_orders_stuck{status="PENDING"}') and float(line.split()[-1]) >= 1
            for line in metrics.splitlines()
        )

    assert await harness.until(exported)
    assert_problem(await harness.client.get("/api/orders/admin/stuck", headers=user), 403)


async def test_forged_stuck_cursors_are_refused(harness: Harness) -> None:
    """The stuck listing's cursor is (stuck since, order id) in base64; a forged one at
    the edge of the calendar overflowed on its way to UTC and answered 500."""
    admin = harness.admin()
    order_id = new_id()
    for changed_at in (
        "0001-01-01T00:00:00+14:00",  # before the first instant Python holds, once in UTC
        "9999-12-31T23:59:59-14:00",  # after the last
        "2026-01-31T12:00:00",  # no offset: never issued
        "yesterday",
    ):
        forged = encode_cursor(changed_at, order_id)
        assert_problem(
            await harness.client.get(
                "/api/orders/admin/stuck", headers=admin, params={"cursor": forged}
            ),
            404,
            "invalid-cursor",
        )
    for spelling in _OTHER_UUID_SPELLINGS:
        forged = encode_cursor("2026-01-31T12:00:00+00:00", spelling)
        assert_problem(
            await harness.client.get(
                "/api/orders/admin/stuck", headers=admin, params={"cursor": forged}
            ),
            404,
            "invalid-cursor",
        )
    issued = encode_cursor("2026-01-31T12:00:00+00:00", order_id)
    page = await harness.client.get(
        "/api/orders/admin/stuck", headers=admin, params={"cursor": issued}
    )
    assert page.status_code == 200, page.text


async def test_a_cancellation_note_longer_than_stored_is_refused(harness: Harness) -> None:
    order, user = await harness.placed_order()
    before = await harness.order(order["id"], user)
    too_long = await harness.client.post(
        f"/api/orders/{order['id']}/cancel", headers=user, json={"reason": "x" * 81}
    )
    assert_problem(too_long, 422, "validation-error")
    assert await harness.order(order["id"], user) == before  # nothing changed

    note = "Comprei por engano; por favor cancelem antes do envio. Obrigado pela atenção!!!!"
    assert len(note) == 80
    response = await harness.client.post(
        f"/api/orders/{order['id']}/cancel", headers=user, json={"reason": note}
    )
    assert response.status_code == 200, response.text
    cancelled = await harness.order(order["id"], user)
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["history"][-1]["reason"] == note  # kept whole
