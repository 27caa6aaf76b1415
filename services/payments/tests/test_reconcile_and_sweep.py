"""`shop payments reconcile`, and the sweeper that resolves what webhooks failed to tell."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from contracts.events.payments import (
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentRefunded,
    PaymentVoided,
)
from payments_service.cli import app as cli
from payments_service.models import (
    AttemptStatus,
    PaymentAttempt,
    PaymentOrder,
    ReviewStatus,
)
from payments_service.provider import AuthorizeRequest, Intent
from payments_service.repository import record_call
from payments_service.runtime import Payments
from payments_service.service.reconcile import reconcile
from payments_service.service.sweeper import sweep_once
from sqlalchemy import func, update
from typer.testing import CliRunner

from contracts import new_id

from .conftest import Stack
from .support import (
    LOCAL_KEY,
    THREE_DS_2,
    order_cancelled,
    order_placed,
    shipment_dispatched,
    stock_reserved,
)


async def authorize(stack: Stack, **kwargs: object) -> PaymentAuthorized:
    placed = order_placed(**kwargs)  # type: ignore[arg-type]
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized: PaymentAuthorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    return authorized


async def test_reconcile_reports_only_real_mismatches(stack: Stack) -> None:
    since = datetime.now(UTC) - timedelta(seconds=2)
    fine = await authorize(stack)
    captured_order = order_placed()
    await stack.bus.publish(captured_order, stock_reserved(captured_order.order_id))
    await stack.events.wait_for(captured_order.order_id, PaymentAuthorized)
    await stack.bus.publish(shipment_dispatched(captured_order))
    await stack.events.wait_for(captured_order.order_id, PaymentCaptured)
    behind_our_back = await authorize(stack)
    async with stack.webhooks_lost():
        # Cancelled on the dashboard, and the webhook telling us was lost.
        response = await stack.stripe.http.post(
            f"/v1/payment_intents/{behind_our_back.provider_payment_id}/cancel"
        )
        response.raise_for_status()
        orphan = await stack.stripe.create_intent(
            amount="777",
            currency="brl",
            payment_method="pm_card_visa",
            confirm="true",
            capture_method="manual",
            **{
                "metadata[order_id]": new_id(),
                "metadata[payment_id]": new_id(),
                "metadata[shop_namespace]": stack.settings.provider_namespace,
            },
        )
        foreign = await stack.stripe.create_intent(
            amount="999",
            currency="brl",
            payment_method="pm_card_visa",
            confirm="true",
            capture_method="manual",
            **{"metadata[shop_namespace]": "someone-else"},
        )
    until = datetime.now(UTC) + timedelta(seconds=2)

    async with stack.payments.sessionmaker() as session:
        report = await reconcile(
            session=session,
            provider=stack.payments.provider,
            namespace=stack.settings.provider_namespace,
            since=since,
            until=until,
        )

    by_intent = {m.provider_payment_id: m for m in report.mismatches}
    assert by_intent[behind_our_back.provider_payment_id].kind == "status"
    assert by_intent[behind_our_back.provider_payment_id].provider == "canceled"
    assert by_intent[orphan["id"]].kind == "unknown_intent"
    assert foreign["id"] not in by_intent
    assert fine.provider_payment_id not in by_intent
    assert all(m.order_id != captured_order.order_id for m in report.mismatches)
    assert report.matched >= 2

    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["reconcile", "--since", since.isoformat(), "--until", until.isoformat(), "--json"],
        env={
            "PAYMENTS_DATABASE_URL": stack.database_url,
            "PAYMENTS_STRIPE_API_BASE": stack.settings.stripe_api_base,
            "PAYMENTS_STRIPE_API_KEY": LOCAL_KEY,
            "PAYMENTS_KAFKA_NAMESPACE": stack.settings.kafka_namespace,
        },
    )
    assert result.exit_code == 1, result.output
    printed = json.loads(result.output)
    assert {m["provider_payment_id"] for m in printed["mismatches"]} == set(by_intent)


async def test_a_partial_capture_is_reported_not_taken_for_the_whole_order(
    stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider reports less received than authorized (captured for less elsewhere): it was
    accepted as the order's capture, and both sides agreeing on the smaller amount, no report
    showed it. localstripe turns a partial capture into a refund, so the answer is faked."""
    since = datetime.now(UTC) - timedelta(seconds=2)
    placed = order_placed(total=10_000)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    intent_id = authorized.provider_payment_id
    provider = stack.payments.provider
    capture, retrieve = provider.capture, provider.retrieve

    def partly(intent: Intent) -> Intent:
        if intent.id != intent_id or intent.status != "succeeded":
            return intent
        return dataclasses.replace(intent, amount_received=6_000)

    async def captured_partly(intent: str, *, amount: int, idempotency_key: str) -> Intent:
        return partly(await capture(intent, amount=amount, idempotency_key=idempotency_key))

    async def retrieved_partly(intent: str) -> Intent:
        return partly(await retrieve(intent))

    monkeypatch.setattr(provider, "capture", captured_partly)
    monkeypatch.setattr(provider, "retrieve", retrieved_partly)
    caplog.set_level(logging.ERROR, logger="payments_service")

    await stack.bus.publish(shipment_dispatched(placed))

    captured = await stack.events.wait_for(placed.order_id, PaymentCaptured)
    assert captured.amount == 6_000
    assert any(
        r.getMessage() == "captured amount differs from the authorized amount"
        and getattr(r, "order_id", None) == placed.order_id
        for r in caplog.records
    )
    async with stack.payments.sessionmaker() as session:
        report = await reconcile(
            session=session,
            provider=stack.payments.provider,
            namespace=stack.settings.provider_namespace,
            since=since,
            until=datetime.now(UTC) + timedelta(seconds=2),
        )
    [mismatch] = [m for m in report.mismatches if m.order_id == placed.order_id]
    assert (mismatch.kind, mismatch.local, mismatch.provider) == (
        "partial_capture",
        "10000",
        "6000",
    )


async def test_sweeper_completes_3ds_whose_webhook_was_lost(stack: Stack) -> None:
    placed = order_placed(payment_method_id=await stack.stripe.card(THREE_DS_2))
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    action = await stack.events.wait_for(placed.order_id, PaymentActionRequired)
    async with stack.webhooks_lost():
        await stack.stripe.authenticate(await stack.stripe.intent(action.provider_payment_id))
        await asyncio.sleep(1.5)  # localstripe's webhook would have landed by now
        assert stack.events.of(placed.order_id, PaymentAuthorized) == []

        await sweep_once(eager(stack.payments))

    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    assert authorized.payment_id == action.payment_id


async def _unsent_attempt(
    stack: Stack, *, cancelled: bool = False
) -> tuple[str, str, AuthorizeRequest]:
    """An attempt and its request committed, the call never sent (its sender crashed):
    (order id, payment id, the request)."""
    order_id, payment_id, user_id = new_id(), new_id(), new_id()
    key = f"order:{order_id}:attempt:1:authorize"
    request = AuthorizeRequest(
        amount=5_555,
        currency="BRL",
        payment_method="pm_card_visa",
        metadata={
            "order_id": order_id,
            "payment_id": payment_id,
            "attempt": "1",
            "shop_namespace": stack.settings.provider_namespace,
        },
    )
    async with stack.payments.sessionmaker() as session, session.begin():
        session.add(
            PaymentOrder(
                order_id=order_id,
                user_id=user_id,
                amount=5_555,
                currency="BRL",
                payment_method_id="pm_card_visa",
                placed_at=datetime.now(UTC),
                reservation_id=new_id(),
                cancelled_at=datetime.now(UTC) if cancelled else None,
                cancel_reason="customer_request" if cancelled else None,
            )
        )
        session.add(
            PaymentAttempt(
                id=payment_id,
                order_id=order_id,
                number=1,
                user_id=user_id,
                status=AttemptStatus.PENDING,
                amount=5_555,
                currency="BRL",
                amount_captured=0,
                amount_refunded=0,
                payment_method_id="pm_card_visa",
                idempotency_key=key,
                review_status=ReviewStatus.NONE,
                risk_score=0,
                risk_level="low",
                risk_reasons=[],
            )
        )
        await record_call(
            session,
            key=key,
            operation="authorize",
            order_id=order_id,
            payment_id=payment_id,
            request=request.model_dump(mode="json"),
        )
    return order_id, payment_id, request


async def test_sweeper_resends_a_recorded_call_whose_sender_died(stack: Stack) -> None:
    # A crash right after the attempt and its request were committed, before the call went out.
    order_id, payment_id, _ = await _unsent_attempt(stack)

    await sweep_once(eager(stack.payments))

    authorized = await stack.events.wait_for(order_id, PaymentAuthorized)
    assert (authorized.payment_id, authorized.amount) == (payment_id, 5_555)
    assert len(await stack.stripe.intents_of(order_id)) == 1
    await sweep_once(eager(stack.payments))  # nothing left to do: no second intent
    assert len(await stack.stripe.intents_of(order_id)) == 1


async def test_an_unsent_authorization_of_a_cancelled_order_is_never_sent(stack: Stack) -> None:
    """The order was cancelled while the request waited for its sender: sending it then put a
    hold on the card (voided at once) for an order that was already over."""
    order_id, payment_id, _ = await _unsent_attempt(stack, cancelled=True)

    await sweep_once(eager(stack.payments))

    assert await stack.stripe.intents_of(order_id) == []
    failed = await stack.events.wait_for(order_id, PaymentFailed)
    assert failed.payment_id == payment_id
    async with stack.payments.sessionmaker() as session:
        attempt = await session.get(PaymentAttempt, payment_id)
        assert attempt is not None and attempt.status == AttemptStatus.FAILED


async def test_a_cancelled_orders_request_that_did_reach_the_provider_is_released(
    stack: Stack,
) -> None:
    """The request had acted before its sender died: the intent it made is found by its
    payment id and voided, not left holding the card."""
    order_id, payment_id, request = await _unsent_attempt(stack, cancelled=True)
    made = await stack.payments.provider.authorize(request, idempotency_key=f"made-{payment_id}")
    assert made.status == "requires_capture"

    await sweep_once(eager(stack.payments))

    assert (await stack.stripe.intent(made.id))["status"] == "canceled"
    assert len(await stack.stripe.intents_of(order_id)) == 1
    voided = await stack.events.wait_for(order_id, PaymentVoided)
    assert voided.payment_id == payment_id


def eager(payments: Payments) -> Payments:
    """The same service, with a sweeper that does not wait before looking."""
    settings = payments.settings.model_copy(
        update={"sweep_interval_seconds": 0.001, "sweep_pending_after_seconds": 0}
    )
    return dataclasses.replace(payments, settings=settings)


async def test_shop_payments_authenticate_completes_3ds_locally(stack: Stack) -> None:
    placed = order_placed(payment_method_id="pm_card_authenticationRequired")
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    action = await stack.events.wait_for(placed.order_id, PaymentActionRequired)

    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["authenticate", placed.order_id],
        env={
            "PAYMENTS_DATABASE_URL": stack.database_url,
            "PAYMENTS_STRIPE_API_BASE": stack.settings.stripe_api_base,
            "PAYMENTS_STRIPE_API_KEY": LOCAL_KEY,
        },
    )

    assert result.exit_code == 0, result.output
    assert "requires_capture" in result.output
    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    assert authorized.payment_id == action.payment_id


async def _authorized_seconds_ago(stack: Stack, payment_id: str, seconds: float) -> None:
    async with stack.payments.sessionmaker() as session, session.begin():
        await session.execute(
            update(PaymentAttempt)
            .where(PaymentAttempt.id == payment_id)
            .values(authorized_at=func.now() - timedelta(seconds=seconds))
        )


async def test_an_authorization_no_dispatch_captured_is_captured_before_it_lapses(
    stack: Stack,
) -> None:
    """Stripe cancels a hold left uncaptured for 7 days; a dispatch after that found nothing to
    capture and the parcel left unpaid. The sweeper captures an old enough authorization first;
    the late dispatch then captures nothing more, and a cancellation refunds it."""
    aged = order_placed(total=14_321)
    recent = order_placed()
    reviewed = order_placed(total=stack.settings.risk_amount_review)
    for placed in (aged, recent, reviewed):
        await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized = {
        placed.order_id: await stack.events.wait_for(placed.order_id, PaymentAuthorized)
        for placed in (aged, recent, reviewed)
    }
    assert authorized[reviewed.order_id].flagged_for_review  # its review is still open
    old_enough = stack.settings.capture_authorized_after_seconds + 3_600
    await _authorized_seconds_ago(stack, authorized[aged.order_id].payment_id, old_enough)
    await _authorized_seconds_ago(stack, authorized[reviewed.order_id].payment_id, old_enough)

    await sweep_once(eager(stack.payments))

    captured = await stack.events.wait_for(aged.order_id, PaymentCaptured)
    assert (captured.payment_id, captured.amount) == (authorized[aged.order_id].payment_id, 14_321)
    intent = await stack.stripe.intent(authorized[aged.order_id].provider_payment_id)
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 14_321)
    for kept in (recent, reviewed):
        intent = await stack.stripe.intent(authorized[kept.order_id].provider_payment_id)
        assert intent["status"] == "requires_capture"
        assert stack.events.of(kept.order_id, PaymentCaptured) == []

    await stack.bus.publish(shipment_dispatched(aged), order_cancelled(aged, "customer_request"))
    refunded = await stack.events.wait_for(aged.order_id, PaymentRefunded)
    assert (refunded.amount, refunded.full) == (14_321, True)
    assert len(stack.events.of(aged.order_id, PaymentCaptured)) == 1
