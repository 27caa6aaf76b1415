"""Reconciliation: this service's attempts against the provider's PaymentIntents for a window.

Reports, never repairs: a mismatch needs a human (or the sweeper, for what it can resolve).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from payments_service import repository
from payments_service.models import AttemptStatus, PaymentAttempt
from payments_service.provider import Intent, PaymentProvider, RequestRejected

GRACE = timedelta(minutes=5)
"""An intent is created a moment after its attempt row: look that far past the window's edges."""

EXPECTED: dict[AttemptStatus, frozenset[str]] = {
    AttemptStatus.REQUIRES_ACTION: frozenset({"requires_action"}),
    AttemptStatus.AUTHORIZED: frozenset({"requires_capture"}),
    AttemptStatus.CAPTURED: frozenset({"succeeded"}),
    AttemptStatus.PARTIALLY_REFUNDED: frozenset({"succeeded"}),
    AttemptStatus.REFUNDED: frozenset({"succeeded"}),
    AttemptStatus.VOIDED: frozenset({"canceled"}),
    AttemptStatus.FAILED: frozenset({"requires_payment_method", "canceled"}),
}
"""The provider statuses each local status agrees with (pending agrees with none: it is a
request whose answer was never recorded)."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: str
    """missing_intent | unknown_intent | status | amount | captured_amount | partial_capture |
    refunded_amount | unanswered"""
    order_id: str | None
    payment_id: str | None
    provider_payment_id: str | None
    local: str
    provider: str


@dataclass
class ReconcileReport:
    since: datetime
    until: datetime
    local_attempts: int = 0
    provider_intents: int = 0
    matched: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "local_attempts": self.local_attempts,
            "provider_intents": self.provider_intents,
            "matched": self.matched,
            "mismatches": [asdict(m) for m in self.mismatches],
        }


async def reconcile(
    *,
    session: AsyncSession,
    provider: PaymentProvider,
    namespace: str,
    since: datetime,
    until: datetime,
) -> ReconcileReport:
    report = ReconcileReport(since=since, until=until)
    attempts = await repository.attempts_in_window(session, since=since - GRACE, until=until)
    intents: dict[str, Intent] = {}
    async for listed in provider.intents(created_from=since - GRACE, created_to=until + GRACE):
        if listed.metadata.get("shop_namespace") == namespace:
            intents[listed.id] = listed
    by_payment = {i.metadata.get("payment_id"): i for i in intents.values()}
    report.provider_intents = sum(1 for i in intents.values() if since <= i.created < until)

    seen: set[str] = set()
    for attempt in attempts:
        in_window = since <= attempt.created_at < until
        report.local_attempts += in_window
        intent: Intent | None = intents.get(attempt.provider_payment_id or "") or by_payment.get(
            attempt.id
        )
        if intent is None and attempt.provider_payment_id:
            intent = await _fetch(provider, attempt.provider_payment_id)
        if intent is not None:
            seen.add(intent.id)
            if intent.status == "succeeded" or attempt.amount_refunded:
                # Listings do not carry refunds; the single intent does.
                intent = await _fetch(provider, intent.id) or intents.get(intent.id)
        if not in_window:
            continue
        found = _compare(attempt, intent)
        report.mismatches.extend(found)
        if intent is not None and not found:
            report.matched += 1

    for unseen in intents.values():
        if unseen.id not in seen and since <= unseen.created < until:
            report.mismatches.append(
                Mismatch(
                    kind="unknown_intent",
                    order_id=unseen.metadata.get("order_id"),
                    payment_id=unseen.metadata.get("payment_id"),
                    provider_payment_id=unseen.id,
                    local="absent",
                    provider=f"{unseen.status} {unseen.amount} {unseen.currency}",
                )
            )
    return report


def _compare(attempt: PaymentAttempt, intent: Intent | None) -> list[Mismatch]:
    def mismatch(kind: str, local: str, remote: str) -> Mismatch:
        return Mismatch(
            kind=kind,
            order_id=attempt.order_id,
            payment_id=attempt.id,
            provider_payment_id=attempt.provider_payment_id or (intent.id if intent else None),
            local=local,
            provider=remote,
        )

    if intent is None:
        if attempt.status == AttemptStatus.FAILED and attempt.provider_payment_id is None:
            return []  # declined before reaching the provider (risk, unknown card)
        kind = "unanswered" if attempt.status == AttemptStatus.PENDING else "missing_intent"
        return [mismatch(kind, attempt.status.value, "absent")]
    found: list[Mismatch] = []
    if attempt.status == AttemptStatus.PENDING:
        found.append(mismatch("unanswered", "pending", intent.status))
    elif intent.status not in EXPECTED[attempt.status]:
        found.append(mismatch("status", attempt.status.value, intent.status))
    if intent.amount != attempt.amount or intent.currency != attempt.currency:
        found.append(
            mismatch(
                "amount",
                f"{attempt.amount} {attempt.currency}",
                f"{intent.amount} {intent.currency}",
            )
        )
    if (
        attempt.status
        in (AttemptStatus.CAPTURED, AttemptStatus.PARTIALLY_REFUNDED, AttemptStatus.REFUNDED)
        and intent.amount_received != attempt.amount_captured
    ):
        found.append(
            mismatch("captured_amount", str(attempt.amount_captured), str(intent.amount_received))
        )
    if attempt.captured_at is not None and attempt.amount_captured != attempt.amount:
        # Both sides may agree on a capture of less than the order's total: still a mismatch,
        # with the order, since the order was charged other than what it was confirmed for.
        found.append(mismatch("partial_capture", str(attempt.amount), str(attempt.amount_captured)))
    if intent.amount_refunded != attempt.amount_refunded:
        found.append(
            mismatch("refunded_amount", str(attempt.amount_refunded), str(intent.amount_refunded))
        )
    return found


async def _fetch(provider: PaymentProvider, intent_id: str) -> Intent | None:
    try:
        return await provider.retrieve(intent_id)
    except RequestRejected:
        return None
