"""Capture on dispatch, void and refund on cancellation (always that order's attempt), and admin
partial refunds."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from contracts.events.orders import OrderPlaced
from contracts.events.payments import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentRefunded,
    PaymentVoided,
)
from payments_service import repository
from payments_service.models import Refund, RefundStatus
from payments_service.provider import Intent, ProviderRefund
from payments_service.service.transitions import attempt_key
from shopkit.testing import eventually

from contracts import new_id

from .conftest import Stack
from .support import (
    order_cancelled,
    order_placed,
    shipment_dispatched,
    sign,
    stock_reserved,
    stripe_event,
)


async def authorized_order(stack: Stack, **kwargs: object) -> tuple[OrderPlaced, PaymentAuthorized]:
    placed = order_placed(**kwargs)  # type: ignore[arg-type]
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    return placed, await stack.events.wait_for(placed.order_id, PaymentAuthorized)


async def captured_order(stack: Stack, **kwargs: object) -> tuple[OrderPlaced, PaymentCaptured]:
    placed, _ = await authorized_order(stack, **kwargs)
    await stack.bus.publish(shipment_dispatched(placed))
    return placed, await stack.events.wait_for(placed.order_id, PaymentCaptured)


def admin_headers(stack: Stack, key: str | None = None) -> dict[str, str]:
    headers = stack.tokens.headers(new_id(), roles=("customer", "admin"))
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def test_dispatch_captures_the_authorized_amount_once(stack: Stack) -> None:
    placed, authorized = await authorized_order(stack, total=31_000)

    # Delivered twice under different envelope ids (a producer retry): still one capture.
    await stack.bus.publish(shipment_dispatched(placed), shipment_dispatched(placed))

    captured = await stack.events.wait_for(placed.order_id, PaymentCaptured)
    assert captured.amount == 31_000
    assert captured.payment_id == authorized.payment_id
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    assert intent["status"] == "succeeded"
    assert intent["amount_received"] == 31_000
    await asyncio.sleep(1.5)  # let a second capture (a bug) surface before counting
    assert len(stack.events.of(placed.order_id, PaymentCaptured)) == 1


async def test_a_provider_outage_at_capture_is_retried_until_the_payment_is_captured(
    stack: Stack,
) -> None:
    """Stripe answering 429 and then 500 for longer than the consumer's attempts: the dispatch
    used to be parked after about two seconds, and the parcel travelled with the payment never
    captured. An outage of the provider is retried like one of the database."""
    placed, authorized = await authorized_order(stack, total=23_456)
    capture = r"/v1/payment_intents/[^/]+/capture"
    half = stack.settings.consumer_max_attempts // 2 + 1
    await stack.stripe.refuse(capture, 429, count=half)
    await stack.stripe.refuse(capture, 503, count=half)
    try:
        await stack.bus.publish(shipment_dispatched(placed))

        captured = await stack.events.wait_for(placed.order_id, PaymentCaptured, timeout=90)
    finally:
        await stack.stripe.clear_delays()

    assert captured.amount == 23_456
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    assert intent["status"] == "succeeded"
    assert sum(consumer.dead_lettered for consumer in stack.app.state.consumers) == 0


async def test_cancelling_an_authorized_order_voids_only_its_own_payment(stack: Stack) -> None:
    user_id = new_id()
    kept, kept_auth = await authorized_order(stack, user_id=user_id)
    cancelled, cancelled_auth = await authorized_order(stack, user_id=user_id)

    await stack.bus.publish(order_cancelled(cancelled, "customer_request"))

    voided = await stack.events.wait_for(cancelled.order_id, PaymentVoided)
    assert voided.payment_id == cancelled_auth.payment_id
    assert voided.amount == cancelled.total
    assert (await stack.stripe.intent(cancelled_auth.provider_payment_id))["status"] == "canceled"
    assert (await stack.stripe.intent(kept_auth.provider_payment_id))[
        "status"
    ] == "requires_capture"
    assert stack.events.of(kept.order_id, PaymentVoided) == []


async def test_cancelling_a_captured_order_refunds_it_in_full(stack: Stack) -> None:
    other, other_capture = await captured_order(stack)
    placed, captured = await captured_order(stack, total=12_345)

    await stack.bus.publish(order_cancelled(placed, "admin_request", "SHIPPED"))

    refunded = await stack.events.wait_for(placed.order_id, PaymentRefunded)
    assert (refunded.amount, refunded.full) == (12_345, True)
    assert refunded.payment_id == captured.payment_id
    intent = await stack.stripe.intent(captured.provider_payment_id)
    assert intent["latest_charge"]["amount_refunded"] == 12_345
    other_intent = await stack.stripe.intent(other_capture.provider_payment_id)
    assert other_intent["latest_charge"]["amount_refunded"] == 0
    assert stack.events.of(other.order_id, PaymentRefunded) == []


async def test_admin_partial_refunds_never_exceed_the_capture(stack: Stack) -> None:
    placed, captured = await captured_order(stack, total=10_000)
    url = f"/api/payments/orders/{placed.order_id}/refunds"

    first = await stack.client.post(
        url,
        json={"amount": 3_000, "reason": "damaged item"},
        headers=admin_headers(stack, "refund-1"),
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["amount"], body["status"], body["full"]) == (3_000, "succeeded", False)

    replay = await stack.client.post(
        url,
        json={"amount": 3_000, "reason": "damaged item"},
        headers=admin_headers(stack, "refund-1"),
    )
    assert replay.status_code == 201
    assert replay.json()["refund_id"] == body["refund_id"]

    reused = await stack.client.post(
        url, json={"amount": 500, "reason": "other"}, headers=admin_headers(stack, "refund-1")
    )
    # A conflict with the refund the key already names (the fuzzer's schema-valid reuse must
    # not read as malformed input).
    assert reused.status_code == 409
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"].endswith("/idempotency-key-reused")

    too_much = await stack.client.post(
        url, json={"amount": 7_001, "reason": "too much"}, headers=admin_headers(stack, "refund-2")
    )
    assert too_much.status_code == 409
    assert too_much.json()["refundable"] == 7_000

    rest = await stack.client.post(
        url, json={"amount": 7_000, "reason": "goodwill"}, headers=admin_headers(stack, "refund-3")
    )
    assert rest.status_code == 201
    assert rest.json()["full"] is True
    # Retried once it refunded everything (its answer lost): the same refund, not a 409.
    rest_again = await stack.client.post(
        url, json={"amount": 7_000, "reason": "goodwill"}, headers=admin_headers(stack, "refund-3")
    )
    assert rest_again.status_code == 201, rest_again.text
    assert rest_again.json()["refund_id"] == rest.json()["refund_id"]

    async def both_published() -> list[PaymentRefunded] | None:
        found = stack.events.of(placed.order_id, PaymentRefunded)
        return found if len(found) >= 2 else None

    refunds = await eventually(both_published)
    assert sorted(r.amount for r in refunds) == [3_000, 7_000]
    assert {r.reason for r in refunds} == {"damaged item", "goodwill"}
    intent = await stack.stripe.intent(captured.provider_payment_id)
    assert intent["latest_charge"]["amount_refunded"] == 10_000

    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
    )
    assert view.json()["amount_refunded"] == 10_000
    assert view.json()["attempts"][0]["status"] == "refunded"


async def test_refund_rules_answer_with_problems(stack: Stack) -> None:
    placed, _ = await authorized_order(stack)
    url = f"/api/payments/orders/{placed.order_id}/refunds"
    body = {"amount": 100, "reason": "nope"}

    no_key = await stack.client.post(url, json=body, headers=admin_headers(stack))
    assert no_key.status_code == 422
    assert no_key.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    customer = await stack.client.post(
        url, json=body, headers={**stack.tokens.headers(placed.user_id), "Idempotency-Key": "k"}
    )
    assert customer.status_code == 403
    not_captured = await stack.client.post(url, json=body, headers=admin_headers(stack, "k"))
    assert not_captured.status_code == 409
    bad_body = await stack.client.post(
        url, json={"amount": -5, "reason": "x", "extra": 1}, headers=admin_headers(stack, "k2")
    )
    assert bad_body.status_code == 422
    unknown = await stack.client.post(
        f"/api/payments/orders/{new_id()}/refunds", json=body, headers=admin_headers(stack, "k3")
    )
    assert unknown.status_code == 404
    for response in (no_key, customer, not_captured, bad_body, unknown):
        assert response.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= set(response.json())


async def test_a_duplicated_cancellation_refunds_once(stack: Stack) -> None:
    placed, captured = await captured_order(stack, total=8_800)
    cancelled = order_cancelled(placed, "admin_request", "SHIPPED")

    await stack.bus.publish(cancelled, cancelled)  # the same fact twice, under two envelope ids

    await stack.events.wait_for(placed.order_id, PaymentRefunded)
    await asyncio.sleep(1.5)
    assert len(stack.events.of(placed.order_id, PaymentRefunded)) == 1
    intent = await stack.stripe.intent(captured.provider_payment_id)
    assert intent["latest_charge"]["amount_refunded"] == 8_800


async def test_concurrent_admin_refunds_never_exceed_the_capture(stack: Stack) -> None:
    placed, captured = await captured_order(stack, total=10_000)
    url = f"/api/payments/orders/{placed.order_id}/refunds"

    responses = await asyncio.gather(
        *(
            stack.client.post(
                url,
                json={"amount": 6_000, "reason": f"claim {n}"},
                headers=admin_headers(stack, f"concurrent-{n}"),
            )
            for n in range(3)
        )
    )

    assert sorted(r.status_code for r in responses) == [201, 409, 409]
    intent = await stack.stripe.intent(captured.provider_payment_id)
    assert intent["latest_charge"]["amount_refunded"] == 6_000


async def test_a_refund_the_provider_refuses_is_a_502_and_is_kept(stack: Stack) -> None:
    placed, captured = await captured_order(stack, total=5_000)
    async with stack.webhooks_lost():
        # Refunded on the dashboard; the webhook saying so never arrived.
        await stack.stripe.refund(captured.provider_payment_id, 5_000)
        response = await stack.client.post(
            f"/api/payments/orders/{placed.order_id}/refunds",
            json={"amount": 1_000, "reason": "late claim"},
            headers=admin_headers(stack, "late"),
        )

    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
    )
    [refund] = view.json()["refunds"]
    assert (refund["refund_id"], refund["status"]) == (response.json()["refund_id"], "failed")
    assert refund["failure_message"]


async def _refunded_at_provider(stack: Stack, intent_id: str, amount: int) -> None:
    async def reached() -> bool:
        intent = await stack.stripe.intent(intent_id)
        return bool(intent["latest_charge"]["amount_refunded"] == amount)

    await eventually(reached)


async def test_a_cancellation_refunds_exactly_what_an_unseen_dashboard_refund_left(
    stack: Stack,
) -> None:
    """The full refund asked for everything and was refused (3,000 were already refunded on
    the dashboard, its webhook not yet processed); the 7,000 left stayed charged."""
    placed, captured = await captured_order(stack, total=10_000)
    async with stack.webhooks_lost():
        await stack.stripe.refund(captured.provider_payment_id, 3_000)
        await stack.bus.publish(order_cancelled(placed, "admin_request", "SHIPPED"))
        await _refunded_at_provider(stack, captured.provider_payment_id, 10_000)

    async def both_published() -> list[PaymentRefunded] | None:
        found = stack.events.of(placed.order_id, PaymentRefunded)
        return found if len(found) >= 2 else None

    refunds = sorted(await eventually(both_published), key=lambda r: r.amount)
    assert [(r.amount, r.full) for r in refunds] == [(3_000, False), (7_000, True)]
    assert refunds[1].reason == "admin_request"
    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
    )
    assert view.json()["amount_refunded"] == 10_000
    assert view.json()["attempts"][0]["status"] == "refunded"


async def test_a_refund_whose_call_never_left_is_settled_before_the_rest_is_counted(
    stack: Stack,
) -> None:
    """A crash between writing a refund and calling the provider left it pending; its amount
    was held back from every later refund and never sent, so a cancellation refunded less."""
    placed, captured = await captured_order(stack, total=10_000)
    async with stack.payments.sessionmaker() as session, session.begin():
        attempt = await repository.get_attempt(session, captured.payment_id)
        assert attempt is not None
        stranded = Refund(
            id=new_id(),
            order_id=placed.order_id,
            payment_id=attempt.id,
            amount=3_000,
            currency=attempt.currency,
            reason="damaged item",
            status=RefundStatus.PENDING,
            full=False,
            request_key="admin:stranded",
            requested_by=new_id(),
        )
        stranded.idempotency_key = attempt_key(attempt, f"refund:{stranded.id}")
        await repository.insert_refund(session, stranded)

    await stack.bus.publish(order_cancelled(placed, "admin_request", "SHIPPED"))

    await _refunded_at_provider(stack, captured.provider_payment_id, 10_000)

    async def settled() -> dict[str, object] | None:
        view = await stack.client.get(
            f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
        )
        body: dict[str, object] = view.json()
        return body if body["amount_refunded"] == 10_000 else None

    body = await eventually(settled)
    refunds = body["refunds"]
    assert isinstance(refunds, list)
    assert sorted((r["amount"], r["status"]) for r in refunds) == [
        (3_000, "succeeded"),
        (7_000, "succeeded"),
    ]
    await asyncio.sleep(1.0)  # a second refund (a bug) would be refused by the provider anyway
    intent = await stack.stripe.intent(captured.provider_payment_id)
    assert intent["latest_charge"]["amount_refunded"] == 10_000


async def _our_refund_row(
    stack: Stack,
    captured: PaymentCaptured,
    *,
    amount: int,
    status: RefundStatus,
    request_key: str,
    reason: str = "damaged item",
    age: timedelta = timedelta(0),
) -> Refund:
    """A refund row of ours as an earlier request left it (its answer lost or misread)."""
    async with stack.payments.sessionmaker() as session, session.begin():
        attempt = await repository.get_attempt(session, captured.payment_id)
        assert attempt is not None
        row = Refund(
            id=new_id(),
            order_id=attempt.order_id,
            payment_id=attempt.id,
            amount=amount,
            currency=attempt.currency,
            reason=reason,
            status=status,
            full=False,
            request_key=request_key,
            requested_by=new_id(),
        )
        row.idempotency_key = attempt_key(attempt, f"refund:{row.id}")
        if status == RefundStatus.FAILED:
            row.failure_message = "There is currently another in-progress request using this key."
            row.completed_at = datetime.now(UTC)
        if age:
            row.created_at = datetime.now(UTC) - age
        await repository.insert_refund(session, row)
        return row


async def _made_by_provider(stack: Stack, captured: PaymentCaptured, row: Refund) -> str:
    """The provider makes the refund `row` asked for, under the row's key and metadata (what
    our request did while its answer was lost or misread); returns the provider's id."""
    assert row.idempotency_key is not None
    response = await stack.stripe.http.post(
        "/v1/refunds",
        data={
            "payment_intent": captured.provider_payment_id,
            "amount": str(row.amount),
            "metadata[refund_id]": row.id,
            "metadata[order_id]": row.order_id,
            "metadata[payment_id]": row.payment_id,
        },
        headers={"Idempotency-Key": row.idempotency_key},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def _order_view(stack: Stack, order_id: str) -> dict[str, Any]:
    response = await stack.client.get(
        f"/api/payments/orders/{order_id}", headers=admin_headers(stack)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_refund_recorded_as_refused_but_made_by_the_provider_is_counted_once(
    stack: Stack,
) -> None:
    """Stripe answered 409 (the key's first request still running) and the refund was recorded
    failed while Stripe made it; the provider's refund naming that row was then skipped by
    every sync, so the money was back with the customer and never counted here."""
    placed, captured = await captured_order(stack, total=10_000)
    row = await _our_refund_row(
        stack, captured, amount=4_000, status=RefundStatus.FAILED, request_key="admin:409"
    )

    provider_id = await _made_by_provider(stack, captured, row)  # its webhook syncs it

    async def counted() -> dict[str, Any] | None:
        body = await _order_view(stack, placed.order_id)
        return body if body["amount_refunded"] == 4_000 else None

    body = await eventually(counted)
    [refund] = body["refunds"]
    assert (refund["refund_id"], refund["amount"], refund["status"]) == (row.id, 4_000, "succeeded")
    assert body["attempts"][0]["status"] == "partially_refunded"
    async with stack.payments.sessionmaker() as session:
        stored = await session.get(Refund, row.id)
        assert stored is not None
        assert (stored.provider_refund_id, stored.failure_message) == (provider_id, None)
    published = await stack.events.wait_for(placed.order_id, PaymentRefunded)
    assert (published.refund_id, published.provider_refund_id) == (row.id, provider_id)

    # The rest is refunded on cancellation: exactly 6,000, the 4,000 counted once.
    await stack.bus.publish(order_cancelled(placed, "admin_request", "SHIPPED"))

    async def both_published() -> list[PaymentRefunded] | None:
        found = stack.events.of(placed.order_id, PaymentRefunded)
        return found if len(found) >= 2 else None

    refunds = sorted(await eventually(both_published), key=lambda r: r.amount)
    assert [(r.amount, r.full) for r in refunds] == [(4_000, False), (6_000, True)]
    await asyncio.sleep(1.0)  # a second count of the 4,000 (a bug) would surface here
    assert len(stack.events.of(placed.order_id, PaymentRefunded)) == 2
    assert (await _order_view(stack, placed.order_id))["amount_refunded"] == 10_000
    intent = await stack.stripe.intent(captured.provider_payment_id)
    assert intent["latest_charge"]["amount_refunded"] == 10_000


@pytest.mark.parametrize("retried", [True, False], ids=["same-key-retried", "another-refund"])
async def test_an_unanswered_refund_past_the_key_window_is_counted_not_sent_again(
    stack: Stack, retried: bool
) -> None:
    """A refund row left pending (its answer lost) for more than a day: Stripe had made it but
    had forgotten its key, so the admin refund path sending it again made a second refund.
    Whether the admin retries that refund's key or asks for another refund, what the provider
    already made is counted first."""
    placed, captured = await captured_order(stack, total=10_000)
    key = f"old-{new_id()}"
    row = await _our_refund_row(
        stack,
        captured,
        amount=3_000,
        status=RefundStatus.PENDING,
        request_key=f"admin:{key}",
        age=timedelta(hours=25),
    )
    assert row.idempotency_key is not None
    async with stack.webhooks_lost():  # nothing has told us yet
        provider_id = await _made_by_provider(stack, captured, row)
    await stack.stripe.forget_keys(row.idempotency_key)  # Stripe's 24 hours are over

    url = f"/api/payments/orders/{placed.order_id}/refunds"
    if retried:
        response = await stack.client.post(
            url, json={"amount": 3_000, "reason": "damaged item"}, headers=admin_headers(stack, key)
        )
        assert response.status_code == 201, response.text
        assert (response.json()["refund_id"], response.json()["status"]) == (row.id, "succeeded")
        expected = 3_000
    else:
        response = await stack.client.post(
            url, json={"amount": 2_000, "reason": "late claim"}, headers=admin_headers(stack, "new")
        )
        assert response.status_code == 201, response.text
        assert response.json()["amount"] == 2_000
        expected = 5_000

    await asyncio.sleep(1.0)  # let webhooks of the calls just made be processed
    intent = await stack.stripe.intent(captured.provider_payment_id)
    assert intent["latest_charge"]["amount_refunded"] == expected
    body = await _order_view(stack, placed.order_id)
    assert body["amount_refunded"] == expected
    mine = next(r for r in body["refunds"] if r["refund_id"] == row.id)
    assert (mine["amount"], mine["status"]) == (3_000, "succeeded")
    async with stack.payments.sessionmaker() as session:
        stored = await session.get(Refund, row.id)
        assert stored is not None
        assert stored.provider_refund_id == provider_id


class SettlingRefunds:
    """The provider as it answers refunds it has not settled: each new refund is answered (and
    listed) with `status` until the test changes it; none reaches localstripe."""

    def __init__(self, stack: Stack, monkeypatch: pytest.MonkeyPatch, status: str) -> None:
        self.status = status
        self.settled: dict[str, str] = {}
        """Refunds (by id) the provider has settled, whatever `status` says of the others."""
        self.by_key: dict[str, ProviderRefund] = {}
        provider = stack.payments.provider
        listing = provider.refunds

        async def refund(
            intent_id: str, *, amount: int, metadata: dict[str, str], idempotency_key: str
        ) -> ProviderRefund:
            made = self.by_key.setdefault(
                idempotency_key,
                ProviderRefund(
                    id=f"re_settling_{new_id().replace('-', '')}",
                    amount=amount,
                    currency="BRL",
                    status=self.status,
                    payment_intent_id=intent_id,
                    metadata=dict(metadata),
                ),
            )
            return replace(made, status=self.settled.get(made.id, self.status))

        async def refunds(intent_id: str) -> list[ProviderRefund]:
            ours = [
                replace(made, status=self.settled.get(made.id, self.status))
                for made in self.by_key.values()
                if made.payment_intent_id == intent_id
            ]
            return [*await listing(intent_id), *ours]

        monkeypatch.setattr(provider, "refund", refund)
        monkeypatch.setattr(provider, "refunds", refunds)

    @property
    def ids(self) -> list[str]:
        return [made.id for made in self.by_key.values()]


async def _refund_webhook(stack: Stack, intent_id: str, refund_id: str, status: str) -> None:
    payload = stripe_event(
        "charge.refund.updated",
        {"object": "refund", "id": refund_id, "payment_intent": intent_id, "status": status},
    )
    response = await stack.client.post(
        "/api/payments/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload)},
    )
    assert response.status_code == 200, response.text


async def test_a_refund_pending_at_the_provider_counts_only_once_it_succeeds(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `pending` answer was recorded as succeeded: counted, announced, and never checked."""
    placed, captured = await captured_order(stack, total=9_000)
    url = f"/api/payments/orders/{placed.order_id}/refunds"
    provider = SettlingRefunds(stack, monkeypatch, status="pending")

    response = await stack.client.post(
        url, json={"amount": 4_000, "reason": "damaged"}, headers=admin_headers(stack, "p-1")
    )

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    # Its amount is not refunded yet, nor free to be refunded a second time.
    over = await stack.client.post(
        url, json={"amount": 6_000, "reason": "rest"}, headers=admin_headers(stack, "p-2")
    )
    assert over.status_code == 409
    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
    )
    assert view.json()["amount_refunded"] == 0
    assert [r["status"] for r in view.json()["refunds"]] == ["pending"]
    await asyncio.sleep(1.0)
    assert stack.events.of(placed.order_id, PaymentRefunded) == []

    provider.status = "succeeded"
    await _refund_webhook(stack, captured.provider_payment_id, provider.ids[0], "succeeded")

    refunded = await stack.events.wait_for(placed.order_id, PaymentRefunded)
    assert (refunded.refund_id, refunded.amount, refunded.full) == (
        response.json()["refund_id"],
        4_000,
        False,
    )
    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
    )
    assert view.json()["amount_refunded"] == 4_000
    assert [r["status"] for r in view.json()["refunds"]] == ["succeeded"]


async def test_a_compensation_refund_that_fails_after_pending_is_made_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancellation's refund was answered pending, which ended the compensation; when the
    provider later reported it failed, nothing tried again: a cancelled order stayed charged."""
    placed, captured = await captured_order(stack, total=8_000)
    provider = SettlingRefunds(stack, monkeypatch, status="pending")
    await stack.bus.publish(order_cancelled(placed, "admin_request", "CONFIRMED"))

    async def answered_pending() -> bool:
        return len(provider.ids) == 1

    await eventually(answered_pending, timeout=30)
    [first] = provider.ids
    provider.settled[first] = "failed"
    provider.status = "succeeded"  # the next refund goes through
    await _refund_webhook(stack, captured.provider_payment_id, first, "failed")

    refunded = await stack.events.wait_for(placed.order_id, PaymentRefunded)
    assert (refunded.amount, refunded.full) == (8_000, True)
    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
    )
    assert view.json()["amount_refunded"] == 8_000
    assert sorted(r["status"] for r in view.json()["refunds"]) == ["failed", "succeeded"]


async def test_a_pending_refund_is_settled_by_the_next_sync(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its webhook lost, the pending refund is counted when the next refund syncs first; the
    admin's retry of its key returns it settled, and it is never sent again."""
    placed, _ = await captured_order(stack, total=9_000)
    url = f"/api/payments/orders/{placed.order_id}/refunds"
    provider = SettlingRefunds(stack, monkeypatch, status="requires_action")
    first = await stack.client.post(
        url, json={"amount": 3_000, "reason": "damaged"}, headers=admin_headers(stack, "s-1")
    )
    assert first.json()["status"] == "pending"

    provider.status = "succeeded"
    again = await stack.client.post(
        url, json={"amount": 3_000, "reason": "damaged"}, headers=admin_headers(stack, "s-1")
    )

    assert (again.json()["refund_id"], again.json()["status"]) == (
        first.json()["refund_id"],
        "succeeded",
    )
    assert len(provider.by_key) == 1
    [refunded] = [await stack.events.wait_for(placed.order_id, PaymentRefunded)]
    assert refunded.amount == 3_000


async def test_a_refund_the_provider_answers_failed_is_recorded_failed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed, _ = await captured_order(stack, total=7_000)
    SettlingRefunds(stack, monkeypatch, status="failed")

    response = await stack.client.post(
        f"/api/payments/orders/{placed.order_id}/refunds",
        json={"amount": 2_000, "reason": "damaged"},
        headers=admin_headers(stack, "f-1"),
    )

    assert response.status_code == 502
    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
    )
    assert view.json()["amount_refunded"] == 0
    assert view.json()["attempts"][0]["status"] == "captured"
    [refund] = view.json()["refunds"]
    assert refund["status"] == "failed"
    assert "failed" in refund["failure_message"]
    await asyncio.sleep(1.0)
    assert stack.events.of(placed.order_id, PaymentRefunded) == []


async def test_a_refund_that_fails_after_it_succeeded_is_taken_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe reports a succeeded refund failed later (`charge.refund.updated`): the money is
    charged again, so it must not stay counted as refunded."""
    placed, captured = await captured_order(stack, total=6_000)
    response = await stack.client.post(
        f"/api/payments/orders/{placed.order_id}/refunds",
        json={"amount": 6_000, "reason": "damaged"},
        headers=admin_headers(stack, "r-1"),
    )
    assert response.json()["status"] == "succeeded"
    refunded = await stack.events.wait_for(placed.order_id, PaymentRefunded)
    provider = stack.payments.provider
    listing, retrieve = provider.refunds, provider.retrieve

    async def failed_later(intent_id: str) -> list[ProviderRefund]:
        return [
            replace(r, status="failed", failure_reason="expired_or_canceled_card")
            if r.id == refunded.provider_refund_id
            else r
            for r in await listing(intent_id)
        ]

    async def given_back(intent_id: str) -> Intent:
        return replace(await retrieve(intent_id), amount_refunded=0)

    monkeypatch.setattr(provider, "refunds", failed_later)
    monkeypatch.setattr(provider, "retrieve", given_back)
    await _refund_webhook(
        stack, captured.provider_payment_id, refunded.provider_refund_id, "failed"
    )

    async def taken_back() -> dict[str, Any] | None:
        view = await stack.client.get(
            f"/api/payments/orders/{placed.order_id}", headers=admin_headers(stack)
        )
        body: dict[str, Any] = view.json()
        return body if body["amount_refunded"] == 0 else None

    view = await eventually(taken_back, timeout=15)
    assert view["attempts"][0]["status"] == "captured"
    [refund] = view["refunds"]
    assert refund["status"] == "failed"
    assert "expired_or_canceled_card" in refund["failure_message"]
