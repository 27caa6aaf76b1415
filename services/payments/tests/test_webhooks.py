"""The Stripe webhook receiver: signatures, replays, reordering, unknown intents, and the race
with the synchronous answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from contracts.events.payments import (
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentRefunded,
    PaymentVoided,
)
from payments_service.models import StripeEvent
from payments_service.provider import Intent, PaymentProvider, ProviderUnavailable
from payments_service.runtime import build_provider
from shopkit.testing import eventually
from sqlalchemy import select

from contracts import new_id

from .conftest import Stack
from .support import (
    order_placed,
    shipment_dispatched,
    sign,
    stock_reserved,
    stripe_event,
)
from .test_compensation import authorized_order, captured_order

URL = "/api/payments/webhooks/stripe"


async def post(stack: Stack, payload: bytes, signature: str | None = None) -> dict[str, object]:
    response = await stack.client.post(
        URL,
        content=payload,
        headers={
            "Stripe-Signature": signature or sign(payload),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def outcome(stack: Stack, event_id: str) -> str:
    async def processed() -> str | None:
        async with stack.payments.sessionmaker() as session:
            event = await session.scalar(
                select(StripeEvent).where(StripeEvent.event_id == event_id)
            )
            return event.outcome if event is not None and event.processed_at else None

    return str(await eventually(processed))


async def test_bad_signature_is_rejected_with_a_problem(stack: Stack) -> None:
    payload = stripe_event("payment_intent.succeeded", {"object": "payment_intent", "id": "pi_x"})

    forged = await stack.client.post(
        URL,
        content=payload,
        headers={"Stripe-Signature": sign(payload, secret="whsec_someone_else")},
    )
    missing = await stack.client.post(URL, content=payload)
    tampered = await stack.client.post(
        URL, content=payload + b" ", headers={"Stripe-Signature": sign(payload)}
    )

    for response in (forged, missing, tampered):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/invalid-webhook")


async def test_expired_timestamp_is_rejected(stack: Stack) -> None:
    payload = stripe_event("payment_intent.succeeded", {"object": "payment_intent", "id": "pi_x"})

    response = await stack.client.post(
        URL,
        content=payload,
        headers={"Stripe-Signature": sign(payload, timestamp=int(time.time()) - 301)},
    )

    assert response.status_code == 401
    assert "timestamp" in response.json()["detail"].lower()


async def test_future_timestamp_is_rejected(stack: Stack) -> None:
    payload = stripe_event("payment_intent.succeeded", {"object": "payment_intent", "id": "pi_x"})

    ahead = await stack.client.post(
        URL,
        content=payload,
        headers={"Stripe-Signature": sign(payload, timestamp=int(time.time()) + 360)},
    )
    # Clock skew within the tolerance is still a delivery.
    skewed = await stack.client.post(
        URL,
        content=payload,
        headers={"Stripe-Signature": sign(payload, timestamp=int(time.time()) + 30)},
    )

    assert ahead.status_code == 401
    assert "future" in ahead.json()["detail"].lower()
    assert skewed.status_code == 200, skewed.text


async def test_signed_garbage_is_a_problem_not_a_crash(stack: Stack) -> None:
    for payload in (b"not json", b'{"id": "evt_1"}', b"[]", b'"evt"', b"7", b"\xff\xfe{}"):
        response = await stack.client.post(
            URL, content=payload, headers={"Stripe-Signature": sign(payload)}
        )
        assert response.status_code == 401, payload
        assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_intents_are_acknowledged_and_ignored(stack: Stack) -> None:
    # An intent someone else created on the shared account (another deployment or test run).
    foreign = await stack.stripe.create_intent(
        amount="1000",
        currency="brl",
        payment_method="pm_card_visa",
        confirm="true",
        capture_method="manual",
        **{"metadata[payment_id]": new_id(), "metadata[order_id]": new_id()},
    )
    payload = stripe_event("payment_intent.amount_capturable_updated", foreign)

    receipt = await post(stack, payload)

    assert receipt["duplicate"] is False
    assert await outcome(stack, str(receipt["event_id"])) == "unknown"


class _ThreadNotingEvent(asyncio.Event):
    def __init__(self) -> None:
        super().__init__()
        self.set_from: list[int] = []

    def set(self) -> None:
        self.set_from.append(threading.get_ident())
        super().set()


@contextmanager
def _noting_wakeups(stack: Stack) -> Iterator[_ThreadNotingEvent]:
    """The processor's wake-up event, replaced by one that notes who sets it (then put back)."""
    original = stack.payments.webhooks_waiting
    stack.payments.webhooks_waiting = waiting = _ThreadNotingEvent()
    try:
        yield waiting
    finally:
        stack.payments.webhooks_waiting = original


async def test_a_stored_webhook_wakes_the_processor_from_the_event_loop(stack: Stack) -> None:
    """asyncio.Event is not thread-safe: the wake-up must not run in a worker thread."""
    payload = stripe_event("payment_intent.succeeded", {"object": "payment_intent", "id": "pi_x"})

    with _noting_wakeups(stack) as waiting:
        await post(stack, payload)

        async def woken() -> list[int]:
            return waiting.set_from

        assert await eventually(woken) == [threading.get_ident()]


async def test_a_webhook_settled_when_received_does_not_wake_the_processor(stack: Stack) -> None:
    _, authorized = await authorized_order(stack)
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    payload = stripe_event("payment_intent.amount_capturable_updated", intent)

    with _noting_wakeups(stack) as waiting:
        receipt = await post(stack, payload)
        assert await outcome(stack, str(receipt["event_id"])) == "noop"
        assert waiting.set_from == []


async def test_a_replayed_event_is_processed_once(stack: Stack) -> None:
    placed, authorized = await authorized_order(stack)
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    payload = stripe_event("payment_intent.amount_capturable_updated", intent)

    first = await post(stack, payload)
    second = await post(stack, payload)

    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert first["event_id"] == second["event_id"]
    assert await outcome(stack, str(first["event_id"])) == "noop"
    await asyncio.sleep(0.5)
    assert len(stack.events.of(placed.order_id, PaymentAuthorized)) == 1


async def test_out_of_order_events_never_move_state_backwards(stack: Stack) -> None:
    placed, captured = await captured_order(stack, total=9_000)
    intent_id = captured.provider_payment_id
    await stack.stripe.refund(intent_id, 9_000)  # at the provider (dashboard), not through us
    refunded_intent = await stack.stripe.intent(intent_id)
    now = int(time.time())

    # charge.refunded is processed first; the older succeeded / capturable events come after.
    charge = refunded_intent["latest_charge"]
    refunded = await post(stack, stripe_event("charge.refunded", charge, created=now))
    assert await outcome(stack, str(refunded["event_id"])) in ("applied", "noop")
    late_succeeded = await post(
        stack, stripe_event("payment_intent.succeeded", refunded_intent, created=now - 5)
    )
    late_capturable = await post(
        stack,
        stripe_event(
            "payment_intent.amount_capturable_updated",
            {**refunded_intent, "status": "requires_capture"},
            created=now - 10,
        ),
    )

    assert await outcome(stack, str(late_succeeded["event_id"])) == "stale"
    assert await outcome(stack, str(late_capturable["event_id"])) == "stale"
    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=stack.tokens.headers(placed.user_id)
    )
    attempt = view.json()["attempts"][0]
    assert attempt["status"] == "refunded"
    assert attempt["amount_refunded"] == 9_000
    refunds = stack.events.of(placed.order_id, PaymentRefunded)
    assert [(r.amount, r.full, r.reason) for r in refunds] == [
        (9_000, True, "refunded_at_provider")
    ]
    assert len(stack.events.of(placed.order_id, PaymentCaptured)) == 1


async def test_an_event_with_a_stale_snapshot_is_checked_against_the_provider(stack: Stack) -> None:
    placed, authorized = await authorized_order(stack)
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    # A (signed, fresh) event claiming the intent succeeded: the provider says it did not.
    lie = await post(
        stack, stripe_event("payment_intent.succeeded", {**intent, "status": "succeeded"})
    )

    assert await outcome(stack, str(lie["event_id"])) == "noop"
    assert stack.events.of(placed.order_id, PaymentCaptured) == []


async def test_webhook_racing_the_synchronous_confirm_authorizes_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer is held long enough that finding the intent and posting its webhook always
    # come first, even on a loaded machine; the client waits longer still (the stack's 3 s
    # timeout would turn the late answer into a lost one, another story).
    held = 10.0
    patient = build_provider(stack.settings.model_copy(update={"stripe_timeout_seconds": 3 * held}))
    monkeypatch.setattr(stack.payments, "provider", patient)
    try:
        placed = order_placed()
        # The provider acts at once but its answer takes a while to come back.
        await stack.stripe.delay("/v1/payment_intents", held)
        await stack.bus.publish(placed, stock_reserved(placed.order_id))

        async def created() -> list[dict[str, object]] | None:
            return await stack.stripe.intents_of(placed.order_id) or None

        intent = (await eventually(created))[0]
        assert intent["status"] == "requires_capture"
        receipt = await post(
            stack, stripe_event("payment_intent.amount_capturable_updated", intent)
        )
        # The webhook was stored (2xx) while the confirm call was still waiting for its answer.
        assert stack.events.of(placed.order_id, PaymentAuthorized) == []

        # The held answer first, then the relay and Kafka.
        await stack.events.wait_for(placed.order_id, PaymentAuthorized, timeout=held + 50)
        assert await outcome(stack, str(receipt["event_id"])) in ("applied", "noop")
        await asyncio.sleep(2.0)  # localstripe's own webhook lands too
        assert len(stack.events.of(placed.order_id, PaymentAuthorized)) == 1
        assert len(await stack.stripe.intents_of(placed.order_id)) == 1
    finally:
        monkeypatch.undo()  # the stack's own provider again before this one is closed
        await patient.close()


async def test_webhook_racing_the_capture_answer_captures_once(stack: Stack) -> None:
    placed, authorized = await authorized_order(stack)
    await stack.stripe.delay(f"/v1/payment_intents/{authorized.provider_payment_id}/capture", 2.0)
    await stack.bus.publish(shipment_dispatched(placed))

    async def succeeded() -> dict[str, object] | None:
        intent = await stack.stripe.intent(authorized.provider_payment_id)
        return intent if intent["status"] == "succeeded" else None

    intent = await eventually(succeeded)
    receipt = await post(stack, stripe_event("payment_intent.succeeded", intent))

    await stack.events.wait_for(placed.order_id, PaymentCaptured)
    assert await outcome(stack, str(receipt["event_id"])) in ("applied", "noop")
    await asyncio.sleep(2.0)
    assert len(stack.events.of(placed.order_id, PaymentCaptured)) == 1


async def test_localstripe_webhooks_reach_the_receiver_over_http(stack: Stack) -> None:
    _, authorized = await authorized_order(stack)

    async def delivered() -> list[str] | None:
        async with stack.payments.sessionmaker() as session:
            rows = await session.scalars(
                select(StripeEvent.type).where(
                    StripeEvent.payment_intent_id == authorized.provider_payment_id
                )
            )
            types = list(rows)
        return types if "payment_intent.amount_capturable_updated" in types else None

    assert "payment_intent.amount_capturable_updated" in await eventually(delivered)


async def test_intent_cancelled_at_the_provider_before_authorization_fails_the_payment(
    stack: Stack,
) -> None:
    placed = order_placed(payment_method_id="pm_card_threeDSecure2Required")
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    action = await stack.events.wait_for(placed.order_id, PaymentActionRequired)

    response = await stack.stripe.http.post(
        f"/v1/payment_intents/{action.provider_payment_id}/cancel",
        data={"cancellation_reason": "abandoned"},
    )
    response.raise_for_status()

    # Delivered by localstripe's payment_intent.canceled webhook.
    failed = await stack.events.wait_for(placed.order_id, PaymentFailed)
    assert (failed.reason, failed.payment_id) == ("action_abandoned", action.payment_id)
    assert stack.events.of(placed.order_id, PaymentVoided) == []


async def test_an_authorization_already_recorded_is_no_news_and_a_later_cancel_still_counts(
    stack: Stack,
) -> None:
    placed, authorized = await authorized_order(stack)
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    event = stripe_event("payment_intent.amount_capturable_updated", intent)
    first = await post(stack, event)
    assert await outcome(stack, str(first["event_id"])) == "noop"
    assert (await post(stack, event))["duplicate"] is True  # a replay stays a replay

    # Cancelled at the provider behind our back: its own event is processed as before.
    response = await stack.stripe.http.post(
        f"/v1/payment_intents/{authorized.provider_payment_id}/cancel"
    )
    response.raise_for_status()
    later = await post(stack, stripe_event("payment_intent.canceled", response.json()))
    # (localstripe's own copy of the event may be the one that applies it)
    assert await outcome(stack, str(later["event_id"])) in ("applied", "noop")
    await stack.events.wait_for(placed.order_id, PaymentVoided)
    assert len(stack.events.of(placed.order_id, PaymentVoided)) == 1
    assert len(stack.events.of(placed.order_id, PaymentAuthorized)) == 1


class _OutageFor:
    """The provider, except that reading one intent meets an outage the first `times` times."""

    def __init__(self, provider: PaymentProvider, intent_id: str, *, times: int) -> None:
        self._provider = provider
        self._intent_id = intent_id
        self._times = times
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def retrieve(self, intent_id: str) -> Intent:
        if intent_id == self._intent_id and self.failures < self._times:
            self.failures += 1
            raise ProviderUnavailable("Request req_outage: 503 Service Unavailable")
        return await self._provider.retrieve(intent_id)


async def _settled(stack: Stack, intent_id: str) -> None:
    """Until every webhook already sent about the intent has been processed."""
    await asyncio.sleep(0.5)  # deliveries still on their way

    async def none_waiting() -> bool:
        async with stack.payments.sessionmaker() as session:
            waiting = await session.scalar(
                select(StripeEvent.event_id).where(
                    StripeEvent.payment_intent_id == intent_id, StripeEvent.processed_at.is_(None)
                )
            )
            return waiting is None

    await eventually(none_waiting)


async def test_a_provider_outage_longer_than_the_attempt_limit_never_abandons_an_event(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every failure used to count toward `webhook_max_attempts`: a provider outage of about
    13 minutes (10 tries, backing off) marked its events `failed` for good, and a refund made
    on the dashboard was never counted. An outage is retried until the provider is back."""
    placed, captured = await captured_order(stack, total=7_000)
    intent_id = captured.provider_payment_id
    await _settled(stack, intent_id)
    limit = 2
    monkeypatch.setattr(stack.payments.settings, "webhook_max_attempts", limit)
    outage = _OutageFor(stack.payments.provider, intent_id, times=limit + 2)
    monkeypatch.setattr(stack.payments, "provider", outage)
    async with stack.webhooks_lost():  # only the event below tells of it (localstripe's own
        # delivery is scheduled after its answer, so the whole test runs without it)
        charge = await stack.stripe.refund(intent_id, 2_500)
        payload = stripe_event(
            "charge.refunded",
            {"id": charge["charge"], "object": "charge", "payment_intent": intent_id},
        )

        receipt = await post(stack, payload)

        async def processed() -> StripeEvent | None:
            async with stack.payments.sessionmaker() as session:
                event = await session.get(StripeEvent, receipt["event_id"])
                return event if event is not None and event.processed_at else None

        event = await eventually(processed, timeout=45)
    assert (event.outcome, event.attempts) == ("applied", 0)  # not "failed"
    assert outage.failures == limit + 2
    refunded = await stack.events.wait_for(placed.order_id, PaymentRefunded)
    assert (refunded.amount, refunded.reason) == (2_500, "refunded_at_provider")
