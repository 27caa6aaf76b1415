from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, status
from fastapi.security import APIKeyHeader
from shopkit.db import SessionDep
from shopkit.params import OptionalUuid7, Uuid7
from shopkit.problems import ForbiddenError, UnauthorizedError, responses
from shopkit.security import AdminUser, CurrentUser

from payments_service.errors import (
    IdempotencyKeyReusedError,
    InvalidWebhookError,
    NothingToRefundError,
    PaymentNotFoundError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RefundExceedsCaptureError,
    ReviewAlreadyResolvedError,
    ReviewNotFoundError,
)
from payments_service.models import ReviewStatus
from payments_service.runtime import PaymentsDep
from payments_service.schemas import (
    OrderPaymentsPublic,
    PaymentsExport,
    RefundCreate,
    RefundPublic,
    ReviewList,
    ReviewPublic,
    ReviewResolve,
    WebhookReceipt,
)
from payments_service.service import admin, views, webhooks

router = APIRouter(prefix="/api/payments", tags=["payments"])

_AUTH = (UnauthorizedError,)
_ADMIN = (UnauthorizedError, ForbiddenError)
Id = Uuid7

stripe_signature_scheme = APIKeyHeader(
    name="Stripe-Signature",
    scheme_name="stripeSignature",
    description="Stripe's signature of the raw body (`t=<time>,v1=<HMAC-SHA256>`) with the "
    "endpoint's webhook secret. Missing, wrong or outside the tolerance window (either side "
    "of now): 401.",
    auto_error=False,
)


async def _wake(waiting: asyncio.Event) -> None:
    # A coroutine on purpose: Starlette runs a plain function in its thread pool, and an
    # asyncio.Event set from another thread may not wake its waiter (nor is it safe to touch).
    waiting.set()


@router.post(
    "/webhooks/stripe",
    response_model=WebhookReceipt,
    responses=responses(InvalidWebhookError),
    summary="Stripe webhook (signature verified on the raw body)",
)
async def stripe_webhook(
    request: Request,
    session: SessionDep,
    payments: PaymentsDep,
    background: BackgroundTasks,
    stripe_signature: Annotated[str | None, Depends(stripe_signature_scheme)],
) -> WebhookReceipt:
    """A replayed event (same Stripe event id) is acknowledged again and applied once."""
    receipt = await webhooks.receive(
        session=session, payments=payments, payload=await request.body(), signature=stripe_signature
    )
    if receipt.queued:
        # After the response, hence after the commit: wake the processor for the stored event.
        background.add_task(_wake, payments.webhooks_waiting)
    return WebhookReceipt(event_id=receipt.event_id, duplicate=receipt.duplicate)


@router.get(
    "/me/export",
    response_model=PaymentsExport,
    responses=responses(*_AUTH),
    summary="Everything payments holds about the caller (for the users service's export)",
)
async def export_my_data(session: SessionDep, user: CurrentUser) -> PaymentsExport:
    return await views.export(session=session, principal=user)


@router.get(
    "/orders/{order_id}",
    response_model=OrderPaymentsPublic,
    responses=responses(*_AUTH, PaymentNotFoundError),
    summary="An order's payment attempts, amounts and refunds (owner or admin)",
)
async def get_order_payments(
    order_id: Id, session: SessionDep, user: CurrentUser
) -> OrderPaymentsPublic:
    return await views.order_payments(session=session, order_id=order_id, principal=user)


@router.post(
    "/orders/{order_id}/refunds",
    response_model=RefundPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        *_ADMIN,
        IdempotencyKeyReusedError,
        PaymentNotFoundError,
        NothingToRefundError,
        RefundExceedsCaptureError,
        ProviderRejectedError,
        ProviderUnavailableError,
    ),
    summary="Refund part of an order's captured payment (admin, Idempotency-Key required)",
)
async def refund_order(
    *,
    order_id: Id,
    body: RefundCreate,
    session: SessionDep,
    payments: PaymentsDep,
    user: AdminUser,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)],
) -> RefundPublic:
    return await admin.refund_order(
        session=session,
        payments=payments,
        order_id=order_id,
        body=body,
        idempotency_key=idempotency_key,
        admin=user,
    )


@router.get(
    "/reviews",
    response_model=ReviewList,
    responses=responses(*_ADMIN),
    summary="Payments flagged by risk checks (admin)",
)
async def list_reviews(
    session: SessionDep,
    user: AdminUser,
    review_status: Annotated[
        Literal["pending", "approved", "rejected", "all"], Query(alias="status")
    ] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: OptionalUuid7 = None,
) -> ReviewList:
    chosen = None if review_status == "all" else ReviewStatus(review_status)
    return await views.review_list(session=session, status=chosen, limit=limit, cursor=cursor)


@router.post(
    "/reviews/{payment_id}",
    response_model=ReviewPublic,
    responses=responses(
        *_ADMIN, ReviewNotFoundError, ReviewAlreadyResolvedError, ProviderUnavailableError
    ),
    summary="Approve or reject a flagged payment (admin); rejecting voids or refunds it",
)
async def resolve_review(
    payment_id: Id, body: ReviewResolve, session: SessionDep, payments: PaymentsDep, user: AdminUser
) -> ReviewPublic:
    return await admin.resolve_review(
        session=session, payments=payments, payment_id=payment_id, body=body, admin=user
    )
