"""Risk checks before authorizing, and the admin review of flagged payments."""

from __future__ import annotations

from typing import Any

import pytest
from contracts.events.payments import (
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentReviewResolved,
    PaymentVoided,
)
from payments_service.config import PaymentsSettings
from payments_service.provider import CardDetails, Intent, PaymentProvider, RequestRejected
from payments_service.risk import RiskEngine, RiskLevel, RiskSubject
from shopkit.testing import kafka_namespace

from contracts import new_id

from .conftest import Stack
from .support import BRAZIL, THREE_DS_REQUIRED, order_cancelled, order_placed, stock_reserved


def admin(stack: Stack) -> dict[str, str]:
    return stack.tokens.headers(new_id(), roles=("customer", "admin"))


async def test_amount_above_the_block_threshold_is_declined_without_charging(stack: Stack) -> None:
    placed = order_placed(total=stack.settings.risk_amount_block)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))

    failed = await stack.events.wait_for(placed.order_id, PaymentFailed)

    assert failed.reason == "risk"
    assert "amount" not in (failed.message or "")  # the rule that fired stays internal
    assert await stack.stripe.intents_of(placed.order_id) == []
    view = await stack.client.get(f"/api/payments/orders/{placed.order_id}", headers=admin(stack))
    attempt = view.json()["attempts"][0]
    assert attempt["status"] == "failed"
    assert attempt["risk"]["level"] == "high"
    assert any("amount" in reason for reason in attempt["risk"]["reasons"])


async def test_approval_given_during_3ds_is_not_announced_as_flagged(stack: Stack) -> None:
    """Orders ignores an approval that comes before the payment is authorized and none comes
    again, so an authorization announced as flagged after it would hold the parcel forever."""
    placed = order_placed(
        total=stack.settings.risk_amount_review,
        payment_method_id=await stack.stripe.card(THREE_DS_REQUIRED),
    )
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    action = await stack.events.wait_for(placed.order_id, PaymentActionRequired)
    approved = await stack.client.post(
        f"/api/payments/reviews/{action.payment_id}",
        json={"decision": "approve"},
        headers=admin(stack),
    )
    assert approved.status_code == 200
    assert approved.json()["review_status"] == "approved"

    await stack.stripe.authenticate(await stack.stripe.intent(action.provider_payment_id))

    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    assert authorized.flagged_for_review is False
    view = await stack.client.get(f"/api/payments/orders/{placed.order_id}", headers=admin(stack))
    attempt = view.json()["attempts"][0]
    # The view still says it was sent to review, and how that ended.
    assert attempt["flagged_for_review"] is True
    assert attempt["risk"]["review_status"] == "approved"


async def test_medium_risk_is_authorized_flagged_and_reviewed(stack: Stack) -> None:
    placed = order_placed(total=stack.settings.risk_amount_review)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))

    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    assert authorized.flagged_for_review is True

    listed = await stack.client.get(
        "/api/payments/reviews", params={"limit": 100}, headers=admin(stack)
    )
    assert listed.status_code == 200
    assert authorized.payment_id in [item["payment_id"] for item in listed.json()["items"]]

    url = f"/api/payments/reviews/{authorized.payment_id}"
    customer = await stack.client.post(
        url, json={"decision": "approve"}, headers=stack.tokens.headers(placed.user_id)
    )
    assert customer.status_code == 403
    approved = await stack.client.post(
        url, json={"decision": "approve", "note": "known buyer"}, headers=admin(stack)
    )
    assert approved.status_code == 200
    assert approved.json()["review_status"] == "approved"
    # Orders releases the parcel it holds on this word (shipping gave it no label before).
    resolved = await stack.events.wait_for(placed.order_id, PaymentReviewResolved)
    assert (resolved.payment_id, resolved.decision) == (authorized.payment_id, "approved")
    again = await stack.client.post(url, json={"decision": "reject"}, headers=admin(stack))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    pending = await stack.client.get(
        "/api/payments/reviews", params={"limit": 100}, headers=admin(stack)
    )
    assert authorized.payment_id not in [i["payment_id"] for i in pending.json()["items"]]


async def test_rejecting_a_flagged_payment_voids_it(stack: Stack) -> None:
    placed = order_placed(total=stack.settings.risk_amount_review + 1)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)

    rejected = await stack.client.post(
        f"/api/payments/reviews/{authorized.payment_id}",
        json={"decision": "reject", "note": "stolen card"},
        headers=admin(stack),
    )

    assert rejected.status_code == 200
    assert rejected.json()["status"] == "voided"
    resolved = await stack.events.wait_for(placed.order_id, PaymentReviewResolved)
    assert resolved.decision == "rejected"
    voided = await stack.events.wait_for(placed.order_id, PaymentVoided)
    assert voided.reason == "risk_review_rejected"
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "fraudulent")


async def test_user_velocity_flags_then_declines(stack: Stack) -> None:
    user_id = new_id()
    outcomes = []
    for _ in range(stack.settings.risk_user_attempts_high + 1):
        placed = order_placed(user_id=user_id)
        await stack.bus.publish(placed, stock_reserved(placed.order_id))
        authorized = stack.events.wait_for(placed.order_id, PaymentAuthorized)
        failed = stack.events.wait_for(placed.order_id, PaymentFailed)
        outcomes.append(await _first(authorized, failed))

    flags = [getattr(o, "flagged_for_review", None) for o in outcomes]
    s = stack.settings
    assert flags[: s.risk_user_attempts_medium] == [False] * s.risk_user_attempts_medium
    assert flags[s.risk_user_attempts_medium : s.risk_user_attempts_high] == [True] * (
        s.risk_user_attempts_high - s.risk_user_attempts_medium
    )
    assert isinstance(outcomes[-1], PaymentFailed)
    assert outcomes[-1].reason == "risk"


async def _first(*waits: object) -> object:
    import asyncio

    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED, timeout=30)
    for task in pending:
        task.cancel()
    return next(iter(done)).result()


async def test_engine_scores_card_ip_and_country_signals(stack: Stack) -> None:
    settings = PaymentsSettings(
        kafka_namespace=kafka_namespace(),
        risk_card_attempts_medium=1,
        risk_card_attempts_high=2,
        risk_ip_attempts_medium=1,
        risk_ip_attempts_high=3,
        risk_country_mismatch_score=25,
    )
    engine = RiskEngine(stack.payments.risk.redis, settings)
    card = CardDetails(fingerprint=f"fp-{new_id()}", country="US", brand="visa", last4="4242")

    def subject(n: int, **kwargs: object) -> RiskSubject:
        values: dict[str, object] = {
            "attempt_key": f"attempt-{n}",
            "user_id": new_id(),
            "customer_ip": "10.9.9.9",
            "card": card,
            "amount": 1_000,
            "shipping_country": "US",
        }
        values.update(kwargs)
        return RiskSubject(**values)  # type: ignore[arg-type]

    first = await engine.assess(subject(1))
    same_attempt_again = await engine.assess(subject(1))
    second = await engine.assess(subject(2))
    third = await engine.assess(subject(3))
    abroad = await engine.assess(
        subject(
            4,
            card=CardDetails("fp-other", "US", "visa", "1"),
            customer_ip=None,
            shipping_country="BR",
        )
    )

    assert first.level == RiskLevel.LOW
    assert same_attempt_again.score == first.score  # a retried attempt is not counted twice
    assert second.level == RiskLevel.HIGH  # card 2 > 1 medium, ip 2 > 1 medium: 40 + 40
    assert any(r.startswith("card velocity") for r in third.reasons)
    assert third.level == RiskLevel.HIGH
    assert abroad.score == 25
    assert any("card country US != shipping country BR" in r for r in abroad.reasons)


async def test_domestic_card_is_not_penalised(stack: Stack) -> None:
    placed = order_placed(payment_method_id=await stack.stripe.card(BRAZIL), country="BR")
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    await stack.events.wait_for(placed.order_id, PaymentAuthorized)

    view = await stack.client.get(f"/api/payments/orders/{placed.order_id}", headers=admin(stack))
    risk = view.json()["attempts"][0]["risk"]
    assert not any("country" in reason for reason in risk["reasons"])


async def test_rejecting_a_payment_captured_meanwhile_refunds_it(stack: Stack) -> None:
    """The capture happened at the provider but its answer never came back; the void of the
    rejected payment finds it captured, and the capture is refunded instead of kept."""
    placed = order_placed(total=stack.settings.risk_amount_review + 1)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    async with stack.webhooks_lost():
        captured = await stack.stripe.http.post(
            f"/v1/payment_intents/{authorized.provider_payment_id}/capture"
        )
        assert captured.status_code == 200, captured.text
        rejected = await stack.client.post(
            f"/api/payments/reviews/{authorized.payment_id}",
            json={"decision": "reject", "note": "stolen card"},
            headers=admin(stack),
        )

    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "refunded"
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    assert intent["latest_charge"]["amount_refunded"] == placed.total
    refunded = await stack.events.wait_for(placed.order_id, PaymentRefunded)
    assert (refunded.amount, refunded.full, refunded.reason) == (
        placed.total,
        True,
        "risk_review_rejected",
    )


class _RefusesOneVoid:
    """The provider, refusing the first cancellation of one intent as Stripe can (the intent
    busy, or in a state that cannot be cancelled yet), and replaying that refusal to any later
    request under the same key, as Stripe does with a saved 4xx answer for 24 hours."""

    def __init__(self, provider: PaymentProvider, intent_id: str) -> None:
        self._provider = provider
        self._intent_id = intent_id
        self.refused: set[str] = set()
        self.keys: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def cancel(self, intent_id: str, *, reason: str | None, idempotency_key: str) -> Intent:
        if intent_id == self._intent_id:
            self.keys.append(idempotency_key)
            if not self.refused or idempotency_key in self.refused:
                self.refused.add(idempotency_key)
                raise RequestRejected(
                    "This PaymentIntent could not be canceled right now.", code="intent_busy"
                )
        return await self._provider.cancel(
            intent_id, reason=reason, idempotency_key=idempotency_key
        )


async def test_a_void_refused_once_is_not_refused_again_by_a_replayed_answer(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every void of an attempt used the same key: after one refusal, the order's cancellation
    voided nothing (Stripe answered with the saved refusal) and the hold stayed on the card."""
    placed = order_placed(total=stack.settings.risk_amount_review + 1)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    provider = _RefusesOneVoid(stack.payments.provider, authorized.provider_payment_id)
    monkeypatch.setattr(stack.payments, "provider", provider)

    rejected = await stack.client.post(
        f"/api/payments/reviews/{authorized.payment_id}",
        json={"decision": "reject", "note": "stolen card"},
        headers=admin(stack),
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "authorized"  # the provider refused this void
    await stack.bus.publish(order_cancelled(placed, "customer_request"))

    voided = await stack.events.wait_for(placed.order_id, PaymentVoided)
    assert voided.payment_id == authorized.payment_id
    intent = await stack.stripe.intent(authorized.provider_payment_id)
    assert intent["status"] == "canceled"
    assert len(provider.keys) == 2
    assert len(set(provider.keys)) == 2
