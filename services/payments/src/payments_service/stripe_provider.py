"""`PaymentProvider` on Stripe's official SDK (`StripeClient`, async over aiohttp).

The API base is configurable: the local stack points it at localstripe, production at
https://api.stripe.com. Every write carries the idempotency key its caller persisted.

Calls go through the SDK's requestor (authentication, retries, idempotency keys, error types)
but answers are read as the JSON they are: building the SDK's object tree for every answer and
turning it back into a dict cost more than the call itself. A payment method's card details do
not change, so they are fetched once per payment method.

The SDK's aiohttp client spends a third of the CPU its httpx client does on a call (about 0.4
against 1 ms). Each call is traced as a client span of its own, named by its path template, and
no trace context is sent to the provider.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import stripe
from contracts.ids import is_uuid7
from opentelemetry.trace import SpanKind
from shopkit.tracing import tracer
from stripe.params import PaymentIntentListParamsCreated

from payments_service.provider import (
    AuthorizeRequest,
    CardDetails,
    Intent,
    IntentAction,
    IntentError,
    InvalidWebhook,
    PaymentDeclined,
    ProviderError,
    ProviderRefund,
    ProviderUnavailable,
    RequestRejected,
    WebhookEvent,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_EXPAND_CHARGE = ["latest_charge"]
_CARD_CACHE_SIZE = 10_000


class StripeProvider:
    def __init__(
        self,
        *,
        api_key: str,
        api_base: str,
        webhook_secret: str,
        webhook_tolerance: int = 300,
        timeout: float = 10.0,
        max_network_retries: int = 2,
    ) -> None:
        self._http = stripe.AIOHTTPClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )
        self._webhook_secret = webhook_secret
        self._webhook_tolerance = webhook_tolerance
        self._cards: dict[str, CardDetails] = {}

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def _request(self, method: str, path: str, *ids: str, **params: Any) -> dict[str, Any]:
        """One API call; the answer's JSON object (errors raised as the SDK types them).

        `path` is a template whose `{}` take the `ids`, each quoted as one path segment."""
        response = await _call(
            f"{method.upper()} {path.replace('{}', '{id}')}",
            self._client.raw_request_async(method, path.format(*map(_id, ids)), **params),
        )
        data = response.data
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"unexpected answer from the provider for {path}")
        return data

    async def card_details(self, payment_method_id: str) -> CardDetails:
        known = self._cards.get(payment_method_id)
        if known is not None:
            return known
        method = await self._request("get", "/v1/payment_methods/{}", payment_method_id)
        card = _dict(method.get("card"))
        details = CardDetails(
            fingerprint=_str(card.get("fingerprint")),
            country=_upper(card.get("country")),
            brand=_str(card.get("brand")),
            last4=_str(card.get("last4")),
        )
        if len(self._cards) >= _CARD_CACHE_SIZE:
            self._cards.pop(next(iter(self._cards)))
        self._cards[payment_method_id] = details
        return details

    async def authorize(self, request: AuthorizeRequest, *, idempotency_key: str) -> Intent:
        intent = await self._request(
            "post",
            "/v1/payment_intents",
            amount=request.amount,
            currency=request.currency.lower(),
            payment_method=request.payment_method,
            allowed_payment_method_types=["card"],
            capture_method="manual",
            confirm=True,
            metadata=dict(request.metadata),
            expand=_EXPAND_CHARGE,
            idempotency_key=idempotency_key,
        )
        return intent_from(intent)

    async def retrieve(self, intent_id: str) -> Intent:
        intent = await self._request(
            "get", "/v1/payment_intents/{}", intent_id, expand=_EXPAND_CHARGE
        )
        return intent_from(intent)

    async def capture(self, intent_id: str, *, amount: int, idempotency_key: str) -> Intent:
        intent = await self._request(
            "post",
            "/v1/payment_intents/{}/capture",
            intent_id,
            amount_to_capture=amount,
            expand=_EXPAND_CHARGE,
            idempotency_key=idempotency_key,
        )
        return intent_from(intent)

    async def cancel(self, intent_id: str, *, reason: str | None, idempotency_key: str) -> Intent:
        params: dict[str, Any] = {"expand": _EXPAND_CHARGE}
        if reason is not None:
            params["cancellation_reason"] = reason
        intent = await self._request(
            "post",
            "/v1/payment_intents/{}/cancel",
            intent_id,
            idempotency_key=idempotency_key,
            **params,
        )
        return intent_from(intent)

    async def refund(
        self, intent_id: str, *, amount: int, metadata: dict[str, str], idempotency_key: str
    ) -> ProviderRefund:
        refund = await self._request(
            "post",
            "/v1/refunds",
            payment_intent=intent_id,
            amount=amount,
            metadata=dict(metadata),
            idempotency_key=idempotency_key,
        )
        return refund_from(refund)

    async def refunds(self, intent_id: str) -> list[ProviderRefund]:
        page = await _call(
            "GET /v1/refunds",
            self._client.v1.refunds.list_async({"payment_intent": intent_id, "limit": 100}),
        )
        return [refund_from(item.to_dict()) async for item in page.auto_paging_iter()]

    async def intent_for_payment(self, payment_id: str) -> Intent | None:
        if not is_uuid7(payment_id):  # ours always are; nothing else goes into the query
            return None
        found = await self._request(
            "get",
            "/v1/payment_intents/search",
            query=f"metadata['payment_id']:'{payment_id}'",
            limit=1,
        )
        data = found.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            return None
        return await self.retrieve(str(data[0]["id"]))  # with its charge, as every read has

    async def intents(
        self, *, created_from: datetime, created_to: datetime
    ) -> AsyncIterator[Intent]:
        window: PaymentIntentListParamsCreated = {
            "gte": int(created_from.timestamp()),
            "lt": int(created_to.timestamp()),
        }
        try:
            page = await _call(
                "GET /v1/payment_intents",
                self._client.v1.payment_intents.list_async({"created": window, "limit": 100}),
            )
            local_filter = False
        except RequestRejected:
            # A stand-in without the `created` filter (localstripe before this project's
            # launcher patches): list everything and filter here.
            log.warning("provider rejected the created filter; filtering intents locally")
            page = await _call(
                "GET /v1/payment_intents",
                self._client.v1.payment_intents.list_async({"limit": 100}),
            )
            local_filter = True
        async for item in page.auto_paging_iter():
            intent = intent_from(item.to_dict())
            if local_filter and not created_from <= intent.created < created_to:
                continue
            yield intent

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        # The signature only: the SDK's construct_event would also build its object tree of
        # the whole event, which nothing here reads (the body is parsed once, below).
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self._webhook_secret, tolerance=self._webhook_tolerance
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidWebhook(str(exc.user_message or exc)) from exc
        except ValueError as exc:  # not UTF-8
            raise InvalidWebhook("body is not a JSON event") from exc
        # The SDK bounds only the age; a signature dated ahead of now by more than the
        # tolerance would stay replayable for that long, so it is refused the same way.
        if _signed_at(signature) > time.time() + self._webhook_tolerance:
            raise InvalidWebhook("timestamp is in the future, outside the tolerance zone")
        try:
            body = json.loads(payload)
        except ValueError as exc:
            raise InvalidWebhook("body is not a JSON event") from exc
        if not isinstance(body, dict):
            raise InvalidWebhook("body is not a JSON event")
        return webhook_event_from(body)


def _signed_at(signature: str | None) -> int:
    """The `t=` of a Stripe-Signature the SDK has already accepted (so it is present)."""
    for part in (signature or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    raise InvalidWebhook("no timestamp in the signature header")


async def _call(operation: str, awaitable: Awaitable[T]) -> T:
    """Run one SDK call in a client span, translating Stripe's errors into the provider's."""
    with tracer().start_as_current_span(
        f"stripe {operation}", kind=SpanKind.CLIENT, attributes={"shop.provider": "stripe"}
    ):
        return await _translated(awaitable)


async def _translated(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except stripe.CardError as exc:
        error = _dict((exc.json_body or {}).get("error") if isinstance(exc.json_body, dict) else {})
        intent_data = error.get("payment_intent")
        raise PaymentDeclined(
            exc.user_message or str(exc),
            code=exc.code,
            decline_code=_str(error.get("decline_code")),
            intent=intent_from(intent_data) if isinstance(intent_data, Mapping) else None,
        ) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise ProviderUnavailable(str(exc)) from exc
    except stripe.StripeError as exc:
        if _transient(exc):
            # Not a refusal: the request may still be (or have been) carried out, so it is
            # retried under the same key until the provider gives its final answer.
            raise ProviderUnavailable(str(exc)) from exc
        if isinstance(exc, stripe.IdempotencyError):
            # A reused key with other parameters is a bug here, never a customer problem.
            raise ProviderError(f"idempotency conflict: {exc}") from exc
        if isinstance(exc, stripe.InvalidRequestError):
            raise RequestRejected(exc.user_message or str(exc), code=exc.code) from exc
        if isinstance(exc, stripe.APIError):
            if exc.http_status is not None and exc.http_status < 500:
                raise RequestRejected(str(exc), code=_code(exc)) from exc
            raise ProviderUnavailable(str(exc)) from exc
        raise


def _transient(exc: stripe.StripeError) -> bool:
    """Stripe's answers that say "not now" rather than "no": a 409 (the same key's first
    request still running, `idempotency_key_in_use`, or a lock timeout on the object) and any
    answer carrying `Stripe-Should-Retry: true`. Both may come after the SDK's own retries."""
    if exc.http_status == 409:
        return True
    # The headers are aiohttp's case-insensitive mapping on a real answer, but a plain dict
    # wherever the error was built by hand; compare the names case-insensitively either way.
    return any(
        str(name).lower() == "stripe-should-retry" and str(value).lower() == "true"
        for name, value in (exc.headers or {}).items()
    )


def _code(exc: stripe.StripeError) -> str | None:
    """The error's code: the SDK sets `code` only on some error types, but the body has it."""
    return exc.code or (exc.error.code if exc.error is not None else None)


def intent_from(data: Mapping[str, Any]) -> Intent:
    """An `Intent` from a PaymentIntent's JSON (API response or webhook payload)."""
    charge = data.get("latest_charge")
    refunded = int(charge.get("amount_refunded") or 0) if isinstance(charge, Mapping) else 0
    action_data = data.get("next_action")
    action = None
    if isinstance(action_data, Mapping):
        redirect = _dict(action_data.get("redirect_to_url"))
        action = IntentAction(
            type=str(action_data.get("type") or "use_stripe_sdk"),
            redirect_url=_str(redirect.get("url")),
            client_secret=_str(data.get("client_secret")),
        )
    error_data = data.get("last_payment_error")
    error = None
    if isinstance(error_data, Mapping):
        error = IntentError(
            code=_str(error_data.get("code")),
            decline_code=_str(error_data.get("decline_code")),
            message=_str(error_data.get("message")),
        )
    status = str(data.get("status"))
    amount = int(data.get("amount") or 0)
    capturable = data.get("amount_capturable")
    received = data.get("amount_received")
    return Intent(
        id=str(data["id"]),
        status=status,
        amount=amount,
        currency=str(data.get("currency") or "").upper(),
        amount_capturable=int(capturable)
        if capturable is not None
        else (amount if status == "requires_capture" else 0),
        amount_received=int(received)
        if received is not None
        else (amount if status == "succeeded" else 0),
        amount_refunded=refunded,
        created=_time(data.get("created")),
        metadata={str(k): str(v) for k, v in _dict(data.get("metadata")).items()},
        action=action,
        last_error=error,
        cancellation_reason=_str(data.get("cancellation_reason")),
    )


def refund_from(data: Mapping[str, Any]) -> ProviderRefund:
    return ProviderRefund(
        id=str(data["id"]),
        amount=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "").upper(),
        # No status is no proof the money went back: left pending, settled by the next sync.
        status=str(data.get("status") or "pending"),
        payment_intent_id=_str(data.get("payment_intent")),
        metadata={str(k): str(v) for k, v in _dict(data.get("metadata")).items()},
        failure_reason=_str(data.get("failure_reason")),
    )


def webhook_event_from(body: Mapping[str, Any]) -> WebhookEvent:
    try:
        event_id = str(body["id"])
        event_type = str(body["type"])
        obj = _dict(_dict(body["data"])["object"])
    except (KeyError, TypeError) as exc:
        raise InvalidWebhook("event lacks id, type or data.object") from exc
    kind = obj.get("object")
    intent_id: str | None = None
    if kind == "payment_intent":
        intent_id = _str(obj.get("id"))
    elif kind in ("charge", "refund"):
        intent_id = _str(obj.get("payment_intent"))
    metadata = _dict(obj.get("metadata"))
    return WebhookEvent(
        id=event_id,
        type=event_type,
        created=_time(body.get("created")),
        payment_intent_id=intent_id,
        payment_id=_str(metadata.get("payment_id")) if kind == "payment_intent" else None,
        payload=dict(body),
    )


def _id(value: str) -> str:
    """An object id as one URL path segment."""
    return quote(value, safe="")


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def _upper(value: Any) -> str | None:
    text = _str(value)
    return text.upper() if text else None


def _time(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)
