"""Launch localstripe as the local stand-in for the Stripe API.

localstripe implements the PaymentIntents flow but differs from Stripe in ways this project's
tests and demo depend on; the patches below bring it closer to Stripe's documented behaviour:

* Idempotency: Stripe honours the ``Idempotency-Key`` header (a retried POST with the same key
  returns the first response and never acts twice); localstripe ignores it. The middleware below
  replays the first response for a key (for 24 h, as Stripe does), and answers 400
  ``idempotency_error`` when the same key comes with different parameters.
* Test cards: the decline cards (4000000000000002 generic decline, 4000000000009995 insufficient
  funds, lost/stolen/expired card, incorrect CVC, processing error) decline at confirmation with
  a ``card_error`` carrying ``decline_code`` and the PaymentIntent; cards report their issuing
  country and brand (4242424242424242 is a US Visa, 4000000760000002 a Brazilian Visa).
* Test PaymentMethod ids such as ``pm_card_visa``, ``pm_card_chargeDeclinedInsufficientFunds``,
  ``pm_card_threeDSecure2Required`` or ``pm_card_authenticationRequired`` resolve to those cards.
* PaymentIntents accept ``allowed_payment_method_types`` (the current API's name) and
  ``description``, and carry ``amount_capturable``, ``amount_received``, ``canceled_at`` and
  ``cancellation_reason``; cancel accepts ``cancellation_reason``; listing accepts
  ``created[gt|gte|lt|lte]``; ``GET /v1/payment_intents/search`` answers metadata, status and
  created queries (``metadata['order_id']:'...' AND status:'requires_capture'``).
* Refunds are refused beyond the unrefunded amount of the charge.
* Webhooks Stripe sends and localstripe does not: ``payment_intent.amount_capturable_updated``
  (manual-capture authorization), ``payment_intent.requires_action``,
  ``payment_intent.payment_failed`` after a failed 3-D Secure authentication,
  ``payment_intent.canceled`` and ``charge.refunded``.
* Test controls under ``/_config`` (no API key needed, like localstripe's own):
  ``POST /_config/delays`` (``path`` regex, ``method``, ``seconds``, ``count``) delays the
  response of the next matching requests *after* the server acted, so a client timeout can be
  provoked after the fact, or (with ``status``, 429 or 5xx) answers them with that error
  without acting; ``DELETE /_config/delays`` clears them;
  ``DELETE /_config/webhooks/{id}`` removes a registered webhook;
  ``DELETE /_config/idempotency?prefix=...`` forgets the idempotency keys starting with
  ``prefix``, as Stripe does 24 hours after their first use.
* localstripe pickles its whole store to ``/tmp`` on every write, which grows quadratically with
  load. Here the state file is a journal in the state folder: once a second the objects changed
  since the last write are appended, and the journal is compacted when it outgrows the live
  store (so a write costs what it changed, not what the store holds).
* localstripe finds the objects of one kind (listings, a charge's refunds, which every
  PaymentIntent export computes) by scanning the whole store; here an index by kind answers.
  Responses are compact JSON, and webhooks are sent over one pooled HTTP session.

3-D Secure is completed the way localstripe's Stripe.js stand-in does it:
``POST /v1/payment_intents/{id}/_authenticate`` with ``client_secret`` and ``success=true``
(or ``false`` to fail the challenge), authenticated by a secret key or a ``key=pk_...`` field.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import hashlib
import hmac
import io
import json
import os
import pickle
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from localstripe import resources, server, webhooks
from localstripe.errors import UserError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


# ------------------------------------------------------------------------------ the store

_BY_KIND: dict[str, dict[str, Any]] = {}
"""Live objects by kind (the part of the store key before ':'), in store order."""


def _kind(key: str) -> str:
    return key.partition(":")[0]


def _store_setitem(self: resources.Store, key: str, value: Any) -> None:
    dict.__setitem__(self, key, value)
    _BY_KIND.setdefault(_kind(key), {})[key] = value
    _JOURNAL.touch(key)


def _store_delitem(self: resources.Store, key: str) -> None:
    dict.__delitem__(self, key)
    _BY_KIND.get(_kind(key), {}).pop(key, None)
    _JOURNAL.remove(key)


def _store_clear(self: resources.Store) -> None:
    dict.clear(self)
    _BY_KIND.clear()
    _JOURNAL.rewrite()


def _of_kind(kind: str) -> list[Any]:
    return list(_BY_KIND.get(kind, {}).values())


def _list_of_kind(
    cls: Any, url: str, limit: Any = None, starting_after: Any = None, **kwargs: Any
) -> Any:
    # localstripe's own version scans every key of the store for the kind's prefix.
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    li = resources.List(url, limit=limit, starting_after=starting_after)
    li._list = _of_kind(cls.object)
    return li


_indexed_list_all = classmethod(_list_of_kind)


_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("writing", default=False)
"""True in a write request's task: the objects it retrieves may be changed in place."""


_original_retrieve = resources.StripeObject._api_retrieve.__func__


@classmethod  # type: ignore[misc]
def _tracked_retrieve(cls: Any, id: str) -> Any:
    obj = _original_retrieve(cls, id)
    if _WRITING.get():
        _JOURNAL.touch(f"{cls.object}:{id}")
    return obj


def _tracked_setattr(self: Any, name: str, value: Any) -> None:
    object.__setattr__(self, name, value)
    oid = self.__dict__.get("id")
    if oid is not None and self.object is not None:
        key = f"{self.object}:{oid}"
        if resources.store.get(key) is self:
            _JOURNAL.touch(key)


@web.middleware
async def _writes_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    token = _WRITING.set(True)
    try:
        return await handler(request)
    finally:
        _WRITING.reset(token)


# ------------------------------------------------------------------------------ persistence


class _Ref:
    """Stands for another stored object inside a journal record, resolved after loading."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class _RecordPickler(pickle.Pickler):
    """Pickles one stored object; other stored objects it points to become references, so each
    record stays the size of its own object and identities survive a reload."""

    def __init__(self, file: Any, root: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.root = root

    def persistent_id(self, obj: Any) -> str | None:
        if obj is self.root or not isinstance(obj, resources.StripeObject):
            return None
        oid = obj.__dict__.get("id")
        if oid is None or obj.object is None:
            return None
        key = f"{obj.object}:{oid}"
        return key if resources.store.get(key) is obj else None


class _RecordUnpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> _Ref:
        return _Ref(str(pid))


def _dump_object(key: str, obj: Any) -> bytes:
    buffer = io.BytesIO()
    _RecordPickler(buffer, obj).dump(obj)
    return pickle.dumps((key, buffer.getvalue()), protocol=pickle.HIGHEST_PROTOCOL)


_JOURNAL_HEADER = ("shop-localstripe-journal", 1)


class _Journal:
    """The state file: a header, then records `(key, pickled object)` or `(key, None)` for a
    deletion, appended as the store changes; the last record of a key wins."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.dirty: set[str] = set()
        self.needs_rewrite = False
        self.journal_bytes = 0
        self.live_bytes = 0

    def touch(self, key: str) -> None:
        self.dirty.add(key)

    def remove(self, key: str) -> None:
        self.dirty.add(key)

    def rewrite(self) -> None:
        self.needs_rewrite = True

    def load(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            self.needs_rewrite = True
            return
        payloads: dict[str, bytes | None] = {}
        last_seen: dict[str, bytes] = {}
        with path.open("rb") as f:
            try:
                first = pickle.load(f)  # noqa: S301 - our own state file
            except (EOFError, pickle.UnpicklingError):
                first = None
            if isinstance(first, dict):
                # A whole-store pickle written by an older launcher.
                for key, value in first.items():
                    dict.__setitem__(resources.store, key, value)
                    _BY_KIND.setdefault(_kind(key), {})[key] = value
                self.needs_rewrite = True
                return
            while True:
                try:
                    key, payload = pickle.load(f)  # noqa: S301
                except (EOFError, pickle.UnpicklingError, ValueError, TypeError):
                    break  # the end, or a record cut short by a crash
                payloads.pop(key, None)  # re-inserted keys move to the end, as in the store
                payloads[key] = payload
                if payload is not None:
                    last_seen[key] = payload
            self.journal_bytes = f.tell()
        loaded: dict[str, Any] = {}
        for key, payload in payloads.items():
            if payload is not None:
                loaded[key] = _RecordUnpickler(io.BytesIO(payload)).load()
        detached: dict[str, Any] = {}

        def lookup(key: str) -> Any:
            if key in loaded:
                return loaded[key]
            if key not in detached:  # deleted since, but still pointed to
                payload = last_seen.get(key)
                detached[key] = (
                    _RecordUnpickler(io.BytesIO(payload)).load() if payload is not None else None
                )
                _resolve(detached[key], lookup, set())
            return detached[key]

        seen: set[int] = set()
        for key, obj in loaded.items():
            _resolve(obj, lookup, seen)
            dict.__setitem__(resources.store, key, obj)
            _BY_KIND.setdefault(_kind(key), {})[key] = obj
        self.live_bytes = self.journal_bytes
        self.dirty.clear()

    def flush(self) -> None:
        if self.path is None or not (self.dirty or self.needs_rewrite):
            return
        if self.needs_rewrite or self.journal_bytes > max(4 * self.live_bytes, 8 << 20):
            self._compact(self.path)
            return
        keys, self.dirty = self.dirty, set()
        with self.path.open("ab") as f:
            for key in keys:
                obj = resources.store.get(key)
                f.write(
                    _dump_object(key, obj)
                    if obj is not None
                    else pickle.dumps((key, None), protocol=pickle.HIGHEST_PROTOCOL)
                )
            self.journal_bytes = f.tell()

    def _compact(self, path: Path) -> None:
        self.dirty.clear()
        self.needs_rewrite = False
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(pickle.dumps(_JOURNAL_HEADER, protocol=pickle.HIGHEST_PROTOCOL))
            for key, obj in list(resources.store.items()):
                f.write(_dump_object(key, obj))
            size = f.tell()
        os.replace(tmp, path)
        self.journal_bytes = self.live_bytes = size


def _resolve(value: Any, lookup: Callable[[str], Any], seen: set[int]) -> Any:
    """Replace the references of a loaded record by the objects they name, in place."""
    if isinstance(value, _Ref):
        return lookup(value.key)
    if isinstance(value, dict):
        for k, v in value.items():
            value[k] = _resolve(v, lookup, seen)
        return value
    if isinstance(value, list):
        value[:] = [_resolve(v, lookup, seen) for v in value]
        return value
    if isinstance(value, tuple):
        return tuple(_resolve(v, lookup, seen) for v in value)
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and not isinstance(value, type) and id(value) not in seen:
        seen.add(id(value))
        for k, v in attributes.items():
            attributes[k] = _resolve(v, lookup, seen)
    return value


_JOURNAL = _Journal()


async def _flush_periodically() -> None:
    while True:
        await asyncio.sleep(1)
        _JOURNAL.flush()


# ------------------------------------------------------------------------------ idempotency


class _IdempotencyCache:
    def __init__(self) -> None:
        self.responses: dict[str, tuple[str, int, bytes, str, float]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    def _prune(self, now: float) -> None:
        # Responses are kept in the order they were recorded: the expired ones are in front.
        expired = []
        for key, value in self.responses.items():
            if now - value[4] <= IDEMPOTENCY_TTL_SECONDS:
                break
            expired.append(key)
        for key in expired:
            self.responses.pop(key, None)
            self.locks.pop(key, None)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        scope = f"{request.headers.get('Authorization', '')}:{key}"
        body = await request.read()
        fingerprint = hashlib.sha256(request.path.encode() + b"\0" + body).hexdigest()
        lock = self.locks.setdefault(scope, asyncio.Lock())
        async with lock:
            cached = self.responses.get(scope)
            if cached is not None:
                seen_fingerprint, status, payload, content_type, _ = cached
                if seen_fingerprint != fingerprint:
                    return _idempotency_error(key)
                response = web.Response(status=status, body=payload, content_type=content_type)
                response.headers["Idempotent-Replayed"] = "true"
                response.headers["Idempotency-Key"] = key
                return response
            try:
                response = await handler(request)
            except UserError as exc:
                # Stripe replays executed failures too (a card decline must not run twice).
                response = exc.to_response()
            if isinstance(response, web.Response) and response.status < 500:
                now = time.time()
                self._prune(now)
                self.responses[scope] = (
                    fingerprint,
                    response.status,
                    bytes(response.body or b""),  # type: ignore[arg-type]
                    response.content_type,
                    now,
                )
            return response

    async def forget(self, request: web.Request) -> web.Response:
        prefix = request.query.get("prefix", "")
        forgotten = [
            scope for scope in self.responses if scope.partition(":")[2].startswith(prefix)
        ]
        for scope in forgotten:
            self.responses.pop(scope, None)
            self.locks.pop(scope, None)
        return web.json_response({"forgotten": len(forgotten)})


def _idempotency_error(key: str) -> web.Response:
    body = {
        "error": {
            "type": "idempotency_error",
            "message": (
                f"Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}'."
            ),
        }
    }
    return web.Response(status=400, text=json.dumps(body), content_type="application/json")


# ------------------------------------------------------------------------------ test cards

_DECLINES: dict[str, tuple[str, str, str]] = {
    # number: (code, decline_code, message), as in https://docs.stripe.com/testing#declined-payments
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "4000000000000341": ("card_declined", "generic_decline", "Your card was declined."),
    # 3-D Secure cards that decline once authenticated
    "4000008260003178": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000008400001629": ("card_declined", "generic_decline", "Your card was declined."),
}

_COUNTRIES: dict[str, str] = {
    "4000000760000002": "BR",
    "4000000320000021": "AR",
    "4000001240000000": "CA",
    "4000004840008001": "MX",
    "4000002500000003": "FR",
    "4000002760000016": "DE",
    "4000008260000000": "GB",
    "4000002500003155": "FR",
    "4000002760003184": "DE",
    "4000008260003178": "GB",
}
"""Issuing country of Stripe's country test cards; every other test card is a US card."""

_ALIASES: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_br": "4000000760000002",
    "pm_card_ar": "4000000320000021",
    "pm_card_mx": "4000004840008001",
    "pm_card_fr": "4000002500000003",
    "pm_card_de": "4000002760000016",
    "pm_card_gb": "4000008260000000",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_threeDSecureRequired": "4000000000003063",
    "pm_card_authenticationRequired": "4000002500003155",
    "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds": "4000008260003178",
}


def _brand(number: str) -> str:
    if number.startswith("5"):
        return "mastercard"
    if number.startswith(("34", "37")):
        return "amex"
    return "visa"


def _card_number(obj: Any) -> str | None:
    number = getattr(obj, "_card_number", None)
    return number if isinstance(number, str) else None


_original_pm_init = resources.PaymentMethod.__init__
_original_charging_is_declined = resources.PaymentMethod._charging_is_declined


def _pm_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_pm_init(self, *args, **kwargs)
    number = _card_number(self)
    if self.type == "card" and number is not None:
        self.card["country"] = _COUNTRIES.get(number, "US")
        self.card["brand"] = _brand(number)


def _charging_is_declined(self: Any) -> bool:
    number = _card_number(self)
    if getattr(self, "type", None) == "card" and number in _DECLINES:
        return True
    return bool(_original_charging_is_declined(self))


@classmethod  # type: ignore[misc]
def _canonical_test_article(cls: Any, id: str) -> Any:
    number = _ALIASES.get(id)
    if number is None:
        return None
    return resources.PaymentMethod(
        type="card", card={"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"}
    )


def _set_auth_failure(self: Any) -> None:
    source = resources.PaymentMethod._api_retrieve(self.payment_method)
    code, decline_code, message = _DECLINES.get(
        _card_number(source) or "", ("card_declined", "generic_decline", "Your card was declined.")
    )
    self.status = "failed"
    self.failure_code = code
    self.failure_message = message
    self._decline_code = decline_code


def _raise_failure(self: Any) -> None:
    contents: dict[str, Any] = {
        "code": self.failure_code,
        "decline_code": getattr(self, "_decline_code", None),
        "charge": self.id,
    }
    if self.payment_intent:
        contents["payment_intent"] = resources.PaymentIntent._api_retrieve(
            self.payment_intent
        )._export()
    error = UserError(402, self.failure_message, contents)
    error.body["error"]["type"] = "card_error"
    raise error


# ------------------------------------------------------------------------------ PaymentIntents

PI = resources.PaymentIntent


def _last_payment_error(self: Any) -> dict[str, Any] | None:
    if self._authentication_failed:
        return {
            "type": "card_error",
            "code": "payment_intent_authentication_failure",
            "message": "The provided PaymentMethod has failed authentication.",
        }
    charge = self.latest_charge
    if charge is not None and charge.status == "failed":
        return {
            "type": "card_error",
            "charge": charge.id,
            "code": charge.failure_code,
            "decline_code": getattr(charge, "_decline_code", None),
            "message": charge.failure_message,
        }
    return None


def _amount_capturable(self: Any) -> int:
    return int(self.amount) if self.status == "requires_capture" else 0


def _amount_received(self: Any) -> int:
    charge = self.latest_charge
    if charge is not None and charge.status == "succeeded" and charge.captured:
        return int(charge.amount)
    return 0


def _canceled_at(self: Any) -> int | None:
    return getattr(self, "_canceled_at", None)


def _cancellation_reason(self: Any) -> str | None:
    return getattr(self, "_cancellation_reason", None)


_original_pi_init = PI.__init__


def _pi_init(
    self: Any,
    *args: Any,
    allowed_payment_method_types: Any = None,
    description: Any = None,
    **kwargs: Any,
) -> None:
    # Stripe's current API names the accepted method types `allowed_payment_method_types`.
    if allowed_payment_method_types is not None and "payment_method_types" not in kwargs:
        kwargs["payment_method_types"] = allowed_payment_method_types
    _original_pi_init(self, *args, **kwargs)
    self.description = description


_original_create_charge = PI._create_charge
_original_confirm = PI._confirm
_original_authenticate = PI._api_authenticate.__func__
_original_cancel = PI._api_cancel.__func__
_original_pi_list_all = _list_of_kind


def _create_charge(self: Any, on_failure_now: Any) -> None:
    _original_create_charge(self, on_failure_now)
    if self.status == "requires_capture":
        webhooks.schedule_webhook(resources.Event("payment_intent.amount_capturable_updated", self))


def _confirm(self: Any, on_failure_now: Any) -> None:
    _original_confirm(self, on_failure_now)
    if self.next_action:
        webhooks.schedule_webhook(resources.Event("payment_intent.requires_action", self))


@classmethod  # type: ignore[misc]
def _api_authenticate(cls: Any, id: str, **kwargs: Any) -> Any:
    obj = _original_authenticate(cls, id, **kwargs)
    if obj._authentication_failed:
        webhooks.schedule_webhook(resources.Event("payment_intent.payment_failed", obj))
    return obj


_CANCELLATION_REASONS = {"duplicate", "fraudulent", "requested_by_customer", "abandoned"}


@classmethod  # type: ignore[misc]
def _api_cancel(cls: Any, id: str, cancellation_reason: str | None = None, **kwargs: Any) -> Any:
    if cancellation_reason is not None and cancellation_reason not in _CANCELLATION_REASONS:
        raise UserError(400, "Invalid cancellation_reason")
    obj = _original_cancel(cls, id, **kwargs)
    obj._canceled_at = int(time.time())
    obj._cancellation_reason = cancellation_reason
    webhooks.schedule_webhook(resources.Event("payment_intent.canceled", obj))
    return obj


def _created_filter(created: Any) -> Callable[[Any], bool]:
    if created is None:
        return lambda obj: True
    if not isinstance(created, dict):
        value = resources.try_convert_to_int(created)
        if not isinstance(value, int):
            raise UserError(400, "Bad created filter")
        return lambda obj: obj.created == value
    bounds: list[Callable[[int], bool]] = []
    for op, raw in created.items():
        value = resources.try_convert_to_int(raw)
        if op not in ("gt", "gte", "lt", "lte") or not isinstance(value, int):
            raise UserError(400, "Bad created filter")
        bounds.append(
            {
                "gt": lambda c, v=value: c > v,
                "gte": lambda c, v=value: c >= v,
                "lt": lambda c, v=value: c < v,
                "lte": lambda c, v=value: c <= v,
            }[op]
        )
    return lambda obj: all(bound(obj.created) for bound in bounds)


@classmethod  # type: ignore[misc]
def _pi_list_all(
    cls: Any,
    url: str,
    created: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> Any:
    keep = _created_filter(created)
    li = _original_pi_list_all(cls, url, limit=limit, starting_after=starting_after, **kwargs)
    # Stripe lists newest first.
    li._list = sorted((pi for pi in li._list if keep(pi)), key=lambda pi: pi.created, reverse=True)
    return li


_CLAUSE = re.compile(
    r"""^\s*(?:metadata\[['"](?P<key>[^'"]+)['"]\]\s*:\s*['"](?P<mvalue>[^'"]*)['"]"""
    r"""|(?P<field>status|currency)\s*:\s*['"](?P<value>[^'"]*)['"]"""
    r"""|(?P<num>created|amount)\s*(?P<op>>=|<=|>|<|:)\s*(?P<number>[0-9]+))\s*$"""
)


def _search_predicate(query: str) -> Callable[[Any], bool]:
    tests: list[Callable[[Any], bool]] = []
    for clause in re.split(r"\s+AND\s+", query.strip()):
        match = _CLAUSE.match(clause)
        if match is None:
            raise UserError(400, f"Unsupported search clause: {clause!r}")
        if match["key"] is not None:
            tests.append(
                lambda pi, k=match["key"], v=match["mvalue"]: (pi.metadata or {}).get(k) == v
            )
        elif match["field"] is not None:
            tests.append(lambda pi, f=match["field"], v=match["value"]: str(getattr(pi, f)) == v)
        else:
            number, op, field = int(match["number"]), match["op"], match["num"]
            compare = {
                ">": lambda a, b: a > b,
                ">=": lambda a, b: a >= b,
                "<": lambda a, b: a < b,
                "<=": lambda a, b: a <= b,
                ":": lambda a, b: a == b,
            }[op]
            tests.append(lambda pi, f=field, c=compare, n=number: c(int(getattr(pi, f)), n))
    return lambda pi: all(test(pi) for test in tests)


@web.middleware
async def _search_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # `/v1/payment_intents/search` would otherwise be routed as the intent with id "search".
    if request.method != "GET" or request.path != "/v1/payment_intents/search":
        return await handler(request)
    query = request.query.get("query")
    if not query:
        raise UserError(400, "Missing required param: query.")
    limit = resources.try_convert_to_int(request.query.get("limit", "10"))
    offset = resources.try_convert_to_int(request.query.get("page", "0"))
    if not isinstance(limit, int) or not 1 <= limit <= 100 or not isinstance(offset, int):
        raise UserError(400, "Bad request")
    matches = _search_predicate(query)
    found = sorted(
        (obj for obj in _of_kind("payment_intent") if matches(obj)),
        key=lambda pi: pi.created,
        reverse=True,
    )
    page = found[offset : offset + limit]
    has_more = len(found) > offset + limit
    return server.json_response(
        {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "data": [pi._export() for pi in page],
            "has_more": has_more,
            "next_page": str(offset + limit) if has_more else None,
            "total_count": len(found),
        }
    )


# ------------------------------------------------------------------------------ refunds

_original_refund_init = resources.Refund.__init__


def _refund_init(
    self: Any, charge: Any = None, payment_intent: Any = None, amount: Any = None, **kwargs: Any
) -> None:
    target = charge
    if target is None and isinstance(payment_intent, str):
        intent = PI._api_retrieve(payment_intent)
        if intent.latest_charge is None:
            raise UserError(400, "This PaymentIntent has no charge to refund.")
        target = intent.latest_charge.id
    if isinstance(target, str):
        charge_obj = resources.Charge._api_retrieve(target)
        remaining = charge_obj.amount - charge_obj.amount_refunded
        wanted = resources.try_convert_to_int(amount) if amount is not None else remaining
        if remaining <= 0:
            raise UserError(
                400,
                f"Charge {target} has already been refunded.",
                {"code": "charge_already_refunded"},
            )
        if isinstance(wanted, int) and wanted > remaining:
            raise UserError(
                400,
                (
                    f"Refund amount ({wanted}) is greater than unrefunded amount "
                    f"on charge ({remaining})"
                ),
                {"code": "amount_too_large", "param": "amount"},
            )
    _original_refund_init(
        self, charge=charge, payment_intent=payment_intent, amount=amount, **kwargs
    )
    webhooks.schedule_webhook(
        resources.Event("charge.refunded", resources.Charge._api_retrieve(self.charge))
    )


# ------------------------------------------------------------------------------ test controls


@dataclass
class _Delay:
    method: str
    path: re.Pattern[str]
    seconds: float
    remaining: int
    status: int = 0
    """When set (429 or 5xx), the request is answered with it instead, without acting."""


class _Delays:
    """Delays chosen responses after the request was fully handled: a client that times out
    meanwhile sees a failure although the server acted, which is what retries must survive."""

    def __init__(self) -> None:
        self.rules: list[_Delay] = []

    def take(self, request: web.Request) -> _Delay | None:
        for rule in self.rules:
            if (
                rule.remaining > 0
                and rule.method == request.method
                and rule.path.fullmatch(request.path)
            ):
                rule.remaining -= 1
                return rule
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_config/"):
            return await handler(request)
        rule = self.take(request)
        if rule is not None and rule.status:
            kind = "rate_limit_error" if rule.status == 429 else "api_error"
            return server.json_response(
                {"error": {"type": kind, "message": "provoked by /_config/delays"}},
                status=rule.status,
            )
        delay = rule.seconds if rule is not None else 0.0
        try:
            response = await handler(request)
        except UserError as exc:
            response = exc.to_response()
        if delay > 0:
            await asyncio.sleep(delay)
        return response

    async def configure(self, request: web.Request) -> web.Response:
        data = await server.get_post_data(request) or {}
        try:
            rule = _Delay(
                method=str(data.get("method", "POST")).upper(),
                path=re.compile(str(data["path"])),
                seconds=float(data.get("seconds", 1.0)),
                remaining=int(data.get("count", 1)),
                status=int(data.get("status", 0)),
            )
        except (KeyError, ValueError, re.error) as exc:
            raise UserError(400, f"Bad delay: {exc}") from exc
        if not 0 < rule.seconds <= 120 or rule.remaining < 1:
            raise UserError(400, "Bad delay: seconds in (0, 120], count >= 1")
        if rule.status and rule.status != 429 and not 500 <= rule.status <= 599:
            raise UserError(400, "Bad delay: status is 429 or 5xx")
        self.rules.append(rule)
        return server.json_response(
            {
                "path": rule.path.pattern,
                "method": rule.method,
                "seconds": rule.seconds,
                "count": rule.remaining,
            }
        )

    async def clear(self, request: web.Request) -> web.Response:
        self.rules.clear()
        return web.Response()


class _WebhookSender:
    """localstripe's webhook delivery (the same one-second delay, payload and signature), over
    one pooled HTTP session instead of a new session and connection per event."""

    session: aiohttp.ClientSession | None = None

    @classmethod
    async def send(cls, event: Any) -> None:
        payload = json.dumps(event._export(), separators=(",", ":")).encode()
        signed_payload = b"%d.%s" % (event.created, payload)
        await asyncio.sleep(1)
        if cls.session is None or cls.session.closed:
            cls.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        for webhook in list(webhooks._webhooks.values()):
            if webhook.events is not None and event.type not in webhook.events:
                continue
            signature = hmac.new(
                webhook.secret.encode(), signed_payload, hashlib.sha256
            ).hexdigest()
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": f"t={event.created},v1={signature}",
            }
            try:
                async with cls.session.post(webhook.url, data=payload, headers=headers) as r:
                    await r.read()
            except (aiohttp.ClientError, TimeoutError):
                pass  # as localstripe: a failed delivery is not retried

    @classmethod
    async def close(cls, app: web.Application) -> None:
        if cls.session is not None:
            await cls.session.close()


def _json_response(*args: Any, **kwargs: Any) -> web.Response:
    return web.json_response(*args, dumps=_compact_json, **kwargs)


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


async def _delete_webhook(request: web.Request) -> web.Response:
    webhooks._webhooks.pop(request.match_info["id"], None)
    return web.Response()


def _patch() -> None:
    """Bring localstripe's behaviour closer to Stripe's (see the module docstring)."""
    resources.PaymentMethod.__init__ = _pm_init  # type: ignore[method-assign]
    resources.PaymentMethod._charging_is_declined = _charging_is_declined  # type: ignore[method-assign]
    resources.PaymentMethod._try_get_canonical_test_article = _canonical_test_article  # type: ignore[method-assign,assignment]
    resources.Charge._set_auth_failure = _set_auth_failure  # type: ignore[method-assign]
    resources.Charge._raise_failure = _raise_failure  # type: ignore[method-assign]
    PI.__init__ = _pi_init  # type: ignore[method-assign]
    PI.last_payment_error = property(_last_payment_error)  # type: ignore[method-assign,assignment]
    PI.amount_capturable = property(_amount_capturable)
    PI.amount_received = property(_amount_received)
    PI.canceled_at = property(_canceled_at)
    PI.cancellation_reason = property(_cancellation_reason)
    PI._create_charge = _create_charge  # type: ignore[method-assign]
    PI._confirm = _confirm  # type: ignore[method-assign]
    PI._api_authenticate = _api_authenticate  # type: ignore[method-assign,assignment]
    PI._api_cancel = _api_cancel  # type: ignore[method-assign,assignment]
    PI._api_list_all = _pi_list_all  # type: ignore[method-assign,assignment]
    resources.Refund.__init__ = _refund_init  # type: ignore[method-assign]
    # Cost: an index by kind instead of store scans, a journal instead of whole-store pickles.
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.__setitem__ = _store_setitem  # type: ignore[method-assign,assignment]
    resources.Store.__delitem__ = _store_delitem  # type: ignore[method-assign,assignment]
    resources.Store.clear = _store_clear  # type: ignore[method-assign,assignment]
    resources.StripeObject.__setattr__ = _tracked_setattr  # type: ignore[method-assign,assignment]
    resources.StripeObject._api_retrieve = _tracked_retrieve  # type: ignore[method-assign,assignment]
    resources.StripeObject._api_list_all = _indexed_list_all  # type: ignore[method-assign,assignment]
    server.json_response = _json_response
    webhooks._send_webhook = _WebhookSender.send
    # The extra routes captured the original classmethods when localstripe registered them.
    for route in server.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if route.method == "POST" and path == "/v1/payment_intents/{id}/cancel":
            route._handler = server.api_extra(PI._api_cancel, path)  # type: ignore[attr-defined]
        elif route.method == "POST" and path == "/v1/payment_intents/{id}/_authenticate":
            route._handler = server.api_extra(PI._api_authenticate, path)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args()

    _patch()
    delays = _Delays()
    cache = _IdempotencyCache()
    # Order matters: the delay wraps the idempotency cache, so a delayed response has already
    # been recorded and a retry with the same key replays it instead of acting again.
    server.app.middlewares.append(delays.middleware)
    server.app.middlewares.append(cache.middleware)
    server.app.middlewares.append(_search_middleware)
    server.app.middlewares.append(_writes_middleware)
    server.app.router.add_post("/_config/delays", delays.configure)
    server.app.router.add_delete("/_config/delays", delays.clear)
    server.app.router.add_delete("/_config/webhooks/{id}", _delete_webhook)
    server.app.router.add_delete("/_config/idempotency", cache.forget)

    state_file: Path | None = args.state_file
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        _JOURNAL.load(state_file)

        async def start_flusher(app: web.Application) -> None:
            app["flusher"] = asyncio.create_task(_flush_periodically())

        async def final_flush(app: web.Application) -> None:
            _JOURNAL.flush()

        server.app.on_startup.append(start_flusher)
        server.app.on_shutdown.append(final_flush)
    server.app.on_cleanup.append(_WebhookSender.close)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    web.run_app(server.app, sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    main()
