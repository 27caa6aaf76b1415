"""How Stripe's error answers become the provider's errors: a refusal is final, while "not now"
(a 409, or any answer saying `Stripe-Should-Retry: true`) is an outage to retry under the same
key, since the request may still be carried out.

The answers come from a stand-in HTTP server, so the SDK itself reads them and builds its error
objects (type, status, headers) exactly as it does for Stripe's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from payments_service.provider import (
    PaymentDeclined,
    ProviderError,
    ProviderUnavailable,
    RequestRejected,
)
from payments_service.stripe_provider import StripeProvider


@dataclass
class Answer:
    status: int
    error: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class StandIn:
    """Answers every request with the configured error, counting the requests."""

    def __init__(self) -> None:
        self.answer = Answer(500, {"type": "api_error", "message": "unset"})
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(
            status=self.answer.status,
            text=json.dumps({"error": self.answer.error}),
            content_type="application/json",
            headers={"Request-Id": f"req_{self.requests}", **self.answer.headers},
        )


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, StripeProvider]]:
    server = StandIn()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    provider = StripeProvider(
        api_key="sk_test_errors",
        api_base=f"http://127.0.0.1:{port}",
        webhook_secret="whsec_errors",
        timeout=5,
        max_network_retries=0,
    )
    try:
        yield server, provider
    finally:
        await provider.close()
        await runner.cleanup()


async def _refund(provider: StripeProvider) -> None:
    await provider.refund("pi_1", amount=1_000, metadata={}, idempotency_key="order:x:refund:1")


IN_USE = {
    "type": "idempotency_error",
    "code": "idempotency_key_in_use",
    "message": "There is currently another in-progress request using this Idempotent Key.",
}
LOCK_TIMEOUT = {
    "type": "invalid_request_error",
    "code": "lock_timeout",
    "message": "This object cannot be accessed right now because another API request or "
    "Stripe process is currently accessing it.",
}


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(409, IN_USE), id="409-idempotency-key-in-use"),
        pytest.param(
            Answer(409, IN_USE, {"Stripe-Should-Retry": "true"}), id="409-in-use-should-retry"
        ),
        pytest.param(Answer(409, LOCK_TIMEOUT), id="409-lock-timeout"),
        pytest.param(
            Answer(400, LOCK_TIMEOUT, {"Stripe-Should-Retry": "true"}),
            id="400-should-retry-true",
        ),
        pytest.param(
            Answer(
                404,
                {"type": "invalid_request_error", "message": "not yet"},
                {"stripe-should-retry": "TRUE"},
            ),
            id="404-should-retry-lowercase-header",
        ),
        pytest.param(Answer(503, {"type": "api_error", "message": "down"}), id="503"),
    ],
)
async def test_answers_that_say_not_now_are_outages(
    stand_in: tuple[StandIn, StripeProvider], answer: Answer
) -> None:
    """A refund (or an authorization) answered so may be made by Stripe all the same: recorded
    as refused, the admin got a 502 and the order a PaymentFailed while Stripe acted."""
    server, provider = stand_in
    server.answer = answer

    with pytest.raises(ProviderUnavailable):
        await _refund(provider)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        pytest.param(
            Answer(
                400,
                {
                    "type": "invalid_request_error",
                    "code": "charge_already_refunded",
                    "message": "Charge ch_1 has already been refunded.",
                },
            ),
            "charge_already_refunded",
            id="400-already-refunded",
        ),
        pytest.param(
            Answer(
                400,
                {
                    "type": "invalid_request_error",
                    "code": "amount_too_large",
                    "message": "Refund amount is greater than unrefunded amount on charge",
                },
                {"Stripe-Should-Retry": "false"},
            ),
            "amount_too_large",
            id="400-should-retry-false",
        ),
        pytest.param(
            Answer(
                404,
                {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": "No such payment_intent: 'pi_1'",
                },
            ),
            "resource_missing",
            id="404-missing",
        ),
        pytest.param(
            Answer(
                422, {"type": "invalid_request_error", "code": "unprocessable", "message": "no"}
            ),
            "unprocessable",
            id="422-other-4xx",
        ),
    ],
)
async def test_genuine_refusals_stay_refusals(
    stand_in: tuple[StandIn, StripeProvider], answer: Answer, code: str
) -> None:
    server, provider = stand_in
    server.answer = answer

    with pytest.raises(RequestRejected) as refused:
        await _refund(provider)

    assert refused.value.code == code


async def test_a_reused_key_with_other_parameters_is_neither(
    stand_in: tuple[StandIn, StripeProvider],
) -> None:
    server, provider = stand_in
    server.answer = Answer(
        400,
        {
            "type": "idempotency_error",
            "message": "Keys for idempotent requests can only be used with the same parameters",
        },
    )

    with pytest.raises(ProviderError) as raised:
        await _refund(provider)

    assert not isinstance(raised.value, (ProviderUnavailable, RequestRejected))


async def test_a_decline_is_a_decline(stand_in: tuple[StandIn, StripeProvider]) -> None:
    server, provider = stand_in
    server.answer = Answer(
        402,
        {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )

    with pytest.raises(PaymentDeclined) as declined:
        await _refund(provider)

    assert declined.value.decline_code == "insufficient_funds"
