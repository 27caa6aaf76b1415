"""Coupons: administration, discounts, limits under concurrency, release on cancellation,
and the anonymous cart's coupon at sign-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from contracts.events.payments import PaymentFailed
from orders_service import jobs
from orders_service.consumers import saga_handlers
from orders_service.models import messaging
from orders_service.service import coupons as coupon_service
from shopkit.app import sessionmaker_of
from shopkit.inbox import PostgresInbox
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event, new_id

from .support import Harness, assert_problem


def _code() -> str:
    return f"C{new_id()[-10:]}".upper().replace("-", "")


async def _coupon(harness: Harness, **fields: Any) -> dict[str, Any]:
    body = {"code": _code(), "kind": "percentage", "percent_off": 10, **fields}
    response = await harness.client.post("/api/coupons", headers=harness.admin(), json=body)
    assert response.status_code == 201, response.text
    coupon: dict[str, Any] = response.json()
    return coupon


async def test_only_admins_manage_coupons(harness: Harness) -> None:
    body = {"code": _code(), "kind": "fixed", "amount_off": 500}
    assert_problem(
        await harness.client.post("/api/coupons", headers=harness.user(), json=body), 403
    )
    assert_problem(await harness.client.post("/api/coupons", json=body), 401)

    admin = harness.admin()
    created = await harness.client.post("/api/coupons", headers=admin, json=body)
    assert created.status_code == 201
    assert created.json()["uses"] == 0 and created.json()["active"] is True
    assert_problem(
        await harness.client.post("/api/coupons", headers=admin, json=body), 409, "coupon-exists"
    )
    fetched = await harness.client.get(f"/api/coupons/{body['code'].lower()}", headers=admin)
    assert fetched.json()["code"] == body["code"]
    assert_problem(await harness.client.get("/api/coupons/NOPE-NOPE", headers=admin), 404)


async def test_invalid_coupon_definitions_are_refused(harness: Harness) -> None:
    admin = harness.admin()
    now = datetime.now(UTC)
    for body in [
        {"code": _code(), "kind": "percentage", "percent_off": 0},
        {"code": _code(), "kind": "percentage", "percent_off": 101},
        {"code": _code(), "kind": "percentage", "amount_off": 100},
        {"code": _code(), "kind": "fixed", "amount_off": -5},
        {"code": _code(), "kind": "fixed", "amount_off": 500, "percent_off": 5},
        {"code": _code(), "kind": "bogo", "amount_off": 500},
        {"code": "a b", "kind": "fixed", "amount_off": 500},
        {"code": _code(), "kind": "fixed", "amount_off": 500, "max_uses": 0},
        {"code": _code(), "kind": "fixed", "amount_off": 500, "valid_from": "2026-01-01"},
        # In UTC, before the first instant Python holds / after the last: this was a 500.
        {
            "code": _code(),
            "kind": "fixed",
            "amount_off": 5,
            "valid_from": "0001-01-01T00:00:00+14:00",
        },
        {
            "code": _code(),
            "kind": "fixed",
            "amount_off": 5,
            "valid_until": "9999-12-31T23:59:59-14:00",
        },
        {"code": _code(), "kind": "fixed", "amount_off": 500, "active": 1},
    ]:
        assert_problem(await harness.client.post("/api/coupons", headers=admin, json=body), 422)
    # A window that ends before it starts is well-formed: a coupon that never applies.
    never = {
        "code": _code(),
        "kind": "fixed",
        "amount_off": 500,
        "valid_from": now.isoformat(),
        "valid_until": (now - timedelta(days=1)).isoformat(),
    }
    assert (await harness.client.post("/api/coupons", headers=admin, json=never)).status_code == 201


async def test_percentage_and_fixed_discounts(harness: Harness) -> None:
    percent = await _coupon(harness, percent_off=15)
    fixed = await _coupon(harness, kind="fixed", percent_off=None, amount_off=700)
    user = harness.user()
    product = await harness.product(price=3333)
    await harness.fill_cart(user, (product, 3))

    cart = (
        await harness.client.post("/api/cart/coupon", headers=user, json={"code": percent["code"]})
    ).json()
    assert cart["coupon_code"] == percent["code"]
    assert cart["discount"] == 9999 * 15 // 100
    assert cart["total"] == 9999 - 9999 * 15 // 100

    cart = (
        await harness.client.post("/api/cart/coupon", headers=user, json={"code": fixed["code"]})
    ).json()
    assert cart["discount"] == 700

    response = await harness.checkout(user, harness.checkout_body([(product.sku, 3)], price=1000))
    order = response.json()
    assert response.status_code == 202
    assert (order["subtotal"], order["discount"], order["shipping"], order["total"]) == (
        9999,
        700,
        1000,
        10299,
    )
    assert order["coupon_code"] == fixed["code"]

    removed = await harness.client.delete("/api/cart/coupon", headers=user)
    assert removed.json()["coupon_code"] is None


async def test_fixed_discount_never_exceeds_the_subtotal(harness: Harness) -> None:
    coupon = await _coupon(harness, kind="fixed", percent_off=None, amount_off=100_000)
    user = harness.user()
    product = await harness.product(price=2500)
    await harness.fill_cart(user, (product, 1))
    await harness.client.post("/api/cart/coupon", headers=user, json={"code": coupon["code"]})
    response = await harness.checkout(user, harness.checkout_body([(product.sku, 1)], price=900))
    assert response.status_code == 202
    assert (response.json()["discount"], response.json()["total"]) == (2500, 900)


async def test_coupon_rules_are_enforced(harness: Harness) -> None:
    now = datetime.now(UTC)
    minimum = await _coupon(harness, min_subtotal=10_000)
    expired = await _coupon(harness, valid_until=(now - timedelta(minutes=1)).isoformat())
    future = await _coupon(harness, valid_from=(now + timedelta(days=1)).isoformat())
    dollars = await _coupon(harness, kind="fixed", percent_off=None, amount_off=100, currency="USD")
    inactive = await _coupon(harness)
    await harness.client.delete(f"/api/coupons/{inactive['code']}", headers=harness.admin())

    user = harness.user()
    product = await harness.product(price=4000)
    await harness.fill_cart(user, (product, 1))
    for coupon in (minimum, expired, future, dollars, inactive):
        response = await harness.client.post(
            "/api/cart/coupon", headers=user, json={"code": coupon["code"]}
        )
        assert_problem(response, 409, "coupon-invalid")
    assert_problem(
        await harness.client.post("/api/cart/coupon", headers=user, json={"code": "NO-SUCH"}),
        409,
        "coupon-invalid",
    )

    # Reaching the minimum makes it usable; dropping below it again blocks checkout, not silently
    # charging the customer more than the cart showed.
    await harness.fill_cart(user, (product, 2))
    applied = await harness.client.post(
        "/api/cart/coupon", headers=user, json={"code": minimum["code"]}
    )
    assert applied.json()["discount"] == 1200
    await harness.client.patch(f"/api/cart/items/{product.sku}", headers=user, json={"quantity": 2})
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert cart["discount"] == 0 and cart["coupon_problem"]
    response = await harness.checkout(user, harness.checkout_body([(product.sku, 2)]))
    assert_problem(response, 409, "coupon-invalid")


async def test_global_limit_holds_under_concurrent_checkouts(harness: Harness) -> None:
    coupon = await _coupon(harness, max_uses=1)
    product = await harness.product(price=5000)
    users = [harness.user() for _ in range(20)]
    for user in users:
        await harness.fill_cart(user, (product, 1))
        applied = await harness.client.post(
            "/api/cart/coupon", headers=user, json={"code": coupon["code"]}
        )
        assert applied.status_code == 200
    body = harness.checkout_body([(product.sku, 1)])

    responses = await asyncio.gather(*(harness.checkout(user, body) for user in users))

    accepted = [r for r in responses if r.status_code == 202]
    assert len(accepted) == 1, [r.status_code for r in responses]
    assert accepted[0].json()["discount"] == 500
    for response in responses:
        if response.status_code != 202:
            assert_problem(response, 409, "coupon-invalid")
    assert await harness.scalar("SELECT uses FROM coupons WHERE code = :c", c=coupon["code"]) == 1
    assert (
        await harness.scalar(
            "SELECT count(*) FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id WHERE c.code = :c",
            c=coupon["code"],
        )
        == 1
    )


async def test_per_user_limit_holds_under_concurrent_checkouts(harness: Harness) -> None:
    coupon = await _coupon(harness, max_uses_per_user=1)
    user = harness.user()
    product = await harness.product(price=2000)
    await harness.fill_cart(user, (product, 1))
    await harness.client.post("/api/cart/coupon", headers=user, json={"code": coupon["code"]})
    first = await harness.checkout(user, harness.checkout_body([(product.sku, 1)]))
    assert first.status_code == 202 and first.json()["discount"] == 200

    # The same user again, concurrently from several devices: the coupon is spent for them.
    await harness.fill_cart(user, (product, 1))
    assert_problem(
        await harness.client.post("/api/cart/coupon", headers=user, json={"code": coupon["code"]}),
        409,
        "coupon-invalid",
    )
    other = harness.user()
    await harness.fill_cart(other, (product, 1))
    assert (
        await harness.client.post("/api/cart/coupon", headers=other, json={"code": coupon["code"]})
    ).status_code == 200


async def test_cancelling_an_order_gives_the_coupon_use_back(harness: Harness) -> None:
    coupon, order, second, body = await _order_with_a_limited_coupon(harness)
    first = harness.tokens.headers(order["user_id"])

    cancelled = await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=first)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert await _uses(harness, coupon) == 0

    again = await harness.checkout(second, body)
    assert again.status_code == 202 and again.json()["discount"] == 500
    assert await _uses(harness, coupon) == 1


async def _uses(harness: Harness, coupon: dict[str, Any]) -> int:
    return int(await harness.scalar("SELECT uses FROM coupons WHERE code = :c", c=coupon["code"]))


def _payment_failed(order: dict[str, Any]) -> Envelope[Event]:
    return Envelope(
        data=PaymentFailed(
            order_id=order["id"],
            payment_id=new_id(),
            reason="declined",
            failed_at=datetime.now(UTC),
        ),
        correlation_id=order["id"],
    )


@asynccontextmanager
async def _saga_transaction(
    harness: Harness, envelope: Envelope[Event]
) -> AsyncIterator[AsyncSession]:
    """`envelope` applied by the saga consumer's handler in a unit of work of the inbox, left
    open: rolled back at the end unless the caller commits the session, which then runs nothing
    of what should follow the commit (as if the process stopped right after it)."""
    async with PostgresInbox(sessionmaker_of(harness.app), messaging).transaction() as tx:
        handler = saga_handlers.handler_for(envelope.type)
        assert handler is not None
        await handler(envelope, tx.context(envelope))
        yield tx.session


async def _order_with_a_limited_coupon(
    harness: Harness,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], dict[str, Any]]:
    """A PENDING order that took the only use of its coupon; another user's checkout with the
    same coupon is refused. Returns the coupon, the order, that other user and their body."""
    coupon = await _coupon(harness, max_uses=1)
    product = await harness.product(price=5000)
    first, second = harness.user(), harness.user()
    for user in (first, second):
        await harness.fill_cart(user, (product, 1))
        await harness.client.post("/api/cart/coupon", headers=user, json={"code": coupon["code"]})
    body = harness.checkout_body([(product.sku, 1)])
    placed = await harness.checkout(first, body)
    assert placed.status_code == 202, placed.text
    assert_problem(await harness.checkout(second, body), 409, "coupon-invalid")
    return coupon, placed.json(), second, body


async def test_a_saga_cancellation_gives_the_coupon_use_back(harness: Harness) -> None:
    coupon, order, second, body = await _order_with_a_limited_coupon(harness)

    await harness.bus.send(_payment_failed(order))

    await harness.wait_status(order["id"], harness.tokens.headers(order["user_id"]), "CANCELLED")

    async def given_back() -> bool:
        return await _uses(harness, coupon) == 0

    await harness.until(given_back)
    again = await harness.checkout(second, body)
    assert again.status_code == 202 and again.json()["discount"] == 500
    assert await _uses(harness, coupon) == 1


async def test_a_use_left_due_goes_back_once_however_many_give_backs_run(
    harness: Harness,
) -> None:
    """The process stopped between the cancellation's commit and the give-back that follows
    it: the use is still due. Give-backs running at once (another batch's, housekeeping on
    every replica) return it exactly once."""
    coupon, order, second, body = await _order_with_a_limited_coupon(harness)
    async with _saga_transaction(harness, _payment_failed(order)) as session:
        await session.commit()

    async def give_back() -> int:
        async with sessionmaker_of(harness.app)() as session:
            return await coupon_service.give_back_uses(session=session)

    for _ in range(2):
        returned = await asyncio.gather(*(give_back() for _ in range(8)))
        # Housekeeping may have given it back already; nobody gives it back twice.
        assert sum(returned) <= 1, returned
        assert await _uses(harness, coupon) == 0

    # The limit of one use is free again, and holds again once taken.
    again = await harness.checkout(second, body)
    assert again.status_code == 202 and again.json()["discount"] == 500
    third = harness.user()
    await harness.fill_cart(third, (await harness.product(price=5000), 1))
    assert_problem(
        await harness.client.post("/api/cart/coupon", headers=third, json={"code": coupon["code"]}),
        409,
        "coupon-invalid",
    )
    assert await _uses(harness, coupon) == 1
    assert (
        await harness.scalar(
            "SELECT count(*) FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id"
            " WHERE c.code = :c AND r.released_at IS NOT NULL",
            c=coupon["code"],
        )
        == 1
    )


async def test_a_saga_cancellation_does_not_hold_the_coupon_row(harness: Harness) -> None:
    """The saga applies a whole batch of events in one transaction. The cancellation in it
    used to give its coupon use back there, holding the coupon row until the batch committed:
    every checkout with that coupon waited for the batch, and a customer's cancel (order,
    then coupon) could deadlock with it (coupon, then the batch's next orders)."""
    coupon, order, _, _ = await _order_with_a_limited_coupon(harness)

    async with _saga_transaction(harness, _payment_failed(order)) as session:
        status = await session.scalar(
            text("SELECT status FROM orders WHERE id = :id"), {"id": order["id"]}
        )
        assert status == "CANCELLED"
        async with harness.engine.connect() as other:
            # Raises "could not obtain lock on row" while another transaction holds it.
            uses = await other.scalar(
                text("SELECT uses FROM coupons WHERE code = :c FOR UPDATE NOWAIT"),
                {"c": coupon["code"]},
            )
            await other.rollback()
        assert uses == 1  # not given back before the cancellation commits

    # Rolled back: the order still holds its use.
    assert await _uses(harness, coupon) == 1
    assert (await harness.order(order["id"], harness.tokens.headers(order["user_id"])))[
        "status"
    ] == "PENDING"


async def test_a_merge_drops_an_anonymous_coupon_the_user_may_not_use(harness: Harness) -> None:
    """The anonymous cart's coupon was applied for nobody in particular. At sign-in the user
    gets it only if they could apply it now: shown as applied, a coupon they have used up (or
    one withdrawn since) would only make checkout fail."""
    once = await _coupon(harness, max_uses_per_user=1)
    withdrawn = await _coupon(harness)
    product = await harness.product(price=3000)
    user = harness.user()
    await harness.fill_cart(user, (product, 1))
    await harness.client.post("/api/cart/coupon", headers=user, json={"code": once["code"]})
    used = await harness.checkout(user, harness.checkout_body([(product.sku, 1)]))
    assert used.status_code == 202 and used.json()["discount"] == 300

    async def anonymous_cart_with(coupon: dict[str, Any]) -> dict[str, str]:
        added = await harness.client.post(
            "/api/cart/items", json={"sku": product.sku, "quantity": 1}
        )
        anonymous = {"X-Cart-Id": added.headers["X-Cart-Id"]}
        applied = await harness.client.post(
            "/api/cart/coupon", headers=anonymous, json={"code": coupon["code"]}
        )
        assert applied.status_code == 200 and applied.json()["coupon_code"] == coupon["code"]
        return anonymous

    for coupon in (once, withdrawn):
        anonymous = await anonymous_cart_with(coupon)
        if coupon is withdrawn:
            await harness.client.delete(f"/api/coupons/{coupon['code']}", headers=harness.admin())
        merged = await harness.client.post("/api/cart/merge", headers={**user, **anonymous})
        assert merged.status_code == 200, merged.text
        assert (merged.json()["coupon_code"], merged.json()["discount"]) == (None, 0)
        assert (await harness.client.get("/api/cart", headers=user)).json()["coupon_code"] is None

    response = await harness.checkout(user, harness.checkout_body([(product.sku, 2)]))
    assert response.status_code == 202, response.text
    assert (response.json()["coupon_code"], response.json()["discount"]) == (None, 0)


async def test_a_merge_brings_an_anonymous_coupon_the_user_may_use(harness: Harness) -> None:
    coupon = await _coupon(harness, max_uses_per_user=1)
    product = await harness.product(price=3000)
    added = await harness.client.post("/api/cart/items", json={"sku": product.sku, "quantity": 1})
    anonymous = {"X-Cart-Id": added.headers["X-Cart-Id"]}
    await harness.client.post("/api/cart/coupon", headers=anonymous, json={"code": coupon["code"]})
    user = harness.user()
    await harness.fill_cart(user, (product, 1))

    merged = await harness.client.post("/api/cart/merge", headers={**user, **anonymous})

    assert merged.status_code == 200, merged.text
    assert (merged.json()["coupon_code"], merged.json()["discount"]) == (coupon["code"], 600)


async def test_coupon_list_is_paginated(harness: Harness) -> None:
    admin = harness.admin()
    for _ in range(3):
        await _coupon(harness)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await harness.client.get("/api/coupons", headers=admin, params=params)).json()
        seen += [c["code"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 3
    assert_problem(
        await harness.client.get("/api/coupons", headers=admin, params={"cursor": "!!"}), 422
    )
    # "Zm9v_" is not base64 at all; "fgA" is, of "~" and a NUL, which PostgreSQL text refuses;
    # "Zm9vIGJhcg" is "foo bar", printable yet never a coupon code.
    for forged in ("Zm9v_", "fgA", "Zm9vIGJhcg"):
        assert_problem(
            await harness.client.get("/api/coupons", headers=admin, params={"cursor": forged}),
            404,
            "invalid-cursor",
        )


async def test_a_failing_give_back_does_not_cost_housekeeping_its_purge(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Housekeeping gives back the uses left due before it purges expired carts, old
    idempotency keys and timeline rows; a give-back that fails must not skip the purge."""

    async def failing_give_back(*, session: AsyncSession) -> int:
        raise RuntimeError("the coupons cannot take a use back now")

    monkeypatch.setattr(jobs.coupon_service, "give_back_uses", failing_give_back)
    cart_id, long_ago = new_id(), datetime.now(UTC) - timedelta(days=2)
    async with sessionmaker_of(harness.app)() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO carts (id, anonymous_key, version, created_at, updated_at,"
                " expires_at) VALUES (:id, :key, 1, :at, :at, :at)"
            ),
            {"id": cart_id, "key": f"expired-{cart_id}", "at": long_ago},
        )

    async def purged() -> bool:
        async with sessionmaker_of(harness.app)() as session:
            found = await session.scalar(
                text("SELECT 1 FROM carts WHERE id = :id"), {"id": cart_id}
            )
        return found is None

    stop = asyncio.Event()
    rounds = asyncio.create_task(jobs.housekeeping(harness.app, stop))
    try:
        assert await harness.until(purged)
    finally:
        stop.set()
        await rounds
