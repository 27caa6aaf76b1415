from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import WithJsonSchema
from shopkit.db import SessionDep
from shopkit.params import OptionalUuid7, Uuid7
from shopkit.problems import ForbiddenError, UnauthorizedError, responses
from shopkit.security import AdminUser, CurrentUser

from notifications_service.errors import DeliveryNotFoundError, DeliveryNotRetryableError
from notifications_service.schemas import (
    DeliveryAdmin,
    DeliveryAdminList,
    DeliveryList,
    NotificationsExport,
)
from notifications_service.service import log

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

Cursor = OptionalUuid7
Limit = Annotated[int, Query(ge=1, le=100)]
DELIVERY_STATUSES = ["pending", "sending", "sent", "failed", "uncertain", "skipped"]
Status = Annotated[
    str | None,
    Query(pattern="^(?:" + "|".join(DELIVERY_STATUSES) + ")$"),
    WithJsonSchema({"type": "string", "enum": DELIVERY_STATUSES}),
]


# `responses=` holds one entry per status: the 409s of a route share it, the slug tells them apart.
RESEND_CONFLICTS = {
    **DeliveryNotRetryableError.response_doc(),
    "description": "Nothing was queued: `delivery-not-retryable` when the delivery is not "
    "`failed` or `uncertain`, or `reset-link-gone` when it is a password reset whose link no "
    "longer works (its token is dropped when the delivery ends): the user asks for a new one.",
}


@router.get("", response_model=DeliveryList, responses=responses(UnauthorizedError))
async def my_notifications(
    session: SessionDep, principal: CurrentUser, limit: Limit = 20, cursor: Cursor = None
) -> DeliveryList:
    """The caller's messages, newest first."""
    return await log.mine(session=session, principal=principal, limit=limit, cursor=cursor)


@router.get(
    "/me/export", response_model=NotificationsExport, responses=responses(UnauthorizedError)
)
async def export_my_data(session: SessionDep, principal: CurrentUser) -> NotificationsExport:
    """Everything notifications holds about the caller (used by the users service's export)."""
    return await log.export(session=session, principal=principal)


@router.get(
    "/admin/deliveries",
    response_model=DeliveryAdminList,
    responses=responses(UnauthorizedError, ForbiddenError),
)
async def all_deliveries(
    session: SessionDep,
    _: AdminUser,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Status = None,
    user_id: OptionalUuid7 = None,
) -> DeliveryAdminList:
    """Every delivery with its attempts; filter by user or status (e.g. `uncertain`)."""
    return await log.admin_list(
        session=session, user_id=user_id, status=status, limit=limit, cursor=cursor
    )


@router.post(
    "/admin/deliveries/{delivery_id}/resend",
    response_model=DeliveryAdmin,
    responses={
        **responses(UnauthorizedError, ForbiddenError, DeliveryNotFoundError),
        409: RESEND_CONFLICTS,
    },
)
async def resend_delivery(delivery_id: Uuid7, session: SessionDep, _: AdminUser) -> DeliveryAdmin:
    """Queue a failed or in-doubt message again (for `uncertain`, knowing it may duplicate).
    A password reset is not sent again: its link no longer works (409 `reset-link-gone`)."""
    return await log.resend(session=session, delivery_id=delivery_id)
