from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Header, Path, Query, Request, Response
from redis.asyncio import Redis
from shopkit.db import SessionDep
from shopkit.problems import UnauthorizedError, responses
from shopkit.security import CurrentUser

from shipping_service.config import ShippingSettings
from shipping_service.errors import (
    CepNotFoundError,
    InvalidCepError,
    InvalidQuoteItemsError,
    InvalidWebhookPayloadError,
    InvalidWebhookSignatureError,
    ShipmentNotFoundError,
    StaleWebhookError,
    UnknownCarrierError,
    UnknownSkuError,
    UnsupportedLabelFormatError,
)
from shipping_service.schemas import (
    CepPublic,
    QuoteRequest,
    QuoteResponse,
    ShipmentList,
    ShipmentPublic,
    ShippingExport,
    TrackingPublic,
    WebhookAck,
)
from shipping_service.service import cep_lookup, quotes, shipments, tracking
from shipping_service.webhooks import SIGNATURE_HEADER

router = APIRouter(prefix="/api/shipping", tags=["shipping"])

Uuid = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]


def _settings(request: Request) -> ShippingSettings:
    settings: ShippingSettings = request.app.state.settings
    return settings


@router.post(
    "/quotes", response_model=QuoteResponse, responses=responses(InvalidCepError, UnknownSkuError)
)
async def create_quotes(body: QuoteRequest, session: SessionDep, request: Request) -> QuoteResponse:
    """Signed shipping options for these items to this CEP (orders verifies the quote id)."""
    return await quotes.quote(
        session=session,
        settings=_settings(request),
        destination_cep=body.destination_cep,
        items=body.items,
    )


@router.get(
    "/quotes",
    response_model=QuoteResponse,
    responses=responses(InvalidCepError, UnknownSkuError, InvalidQuoteItemsError),
)
async def get_quotes(
    session: SessionDep,
    request: Request,
    destination_cep: Annotated[str, Query(max_length=16)],
    items: Annotated[list[str], Query(description="SKU:QUANTITY, repeated")],
) -> QuoteResponse:
    """The same as `POST /quotes`, for links and caches: `?destination_cep=&items=SKU:2`."""
    return await quotes.quote(
        session=session,
        settings=_settings(request),
        destination_cep=destination_cep,
        items=quotes.parse_item_params(items),
    )


@router.get(
    "/cep/{cep}", response_model=CepPublic, responses=responses(InvalidCepError, CepNotFoundError)
)
async def lookup_cep(cep: Annotated[str, Path(max_length=16)], request: Request) -> CepPublic:
    redis: Redis = request.app.state.redis
    http: httpx.AsyncClient = request.app.state.http
    return await cep_lookup.lookup(value=cep, settings=_settings(request), redis=redis, http=http)


@router.get("/shipments", response_model=ShipmentList)
async def list_my_shipments(
    session: SessionDep,
    principal: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{36}$")] = None,
) -> ShipmentList:
    return await shipments.list_mine(
        session=session, principal=principal, limit=limit, cursor=cursor
    )


@router.get(
    "/shipments/{shipment_id}",
    response_model=ShipmentPublic,
    responses=responses(ShipmentNotFoundError, UnauthorizedError),
)
async def get_shipment(
    shipment_id: Uuid, session: SessionDep, principal: CurrentUser
) -> ShipmentPublic:
    return await shipments.get(session=session, principal=principal, shipment_id=shipment_id)


@router.get(
    "/shipments/{shipment_id}/label",
    response_class=Response,
    responses={
        **responses(ShipmentNotFoundError, UnauthorizedError, UnsupportedLabelFormatError),
        200: {"content": {"application/pdf": {}, "application/zpl": {}}},
    },
)
async def get_label(
    shipment_id: Uuid,
    session: SessionDep,
    principal: CurrentUser,
    request: Request,
    format: Annotated[str, Query(pattern=r"^[a-z]{2,5}$")] = "pdf",
) -> Response:
    """The printable label: an A6 PDF, or ZPL II with `?format=zpl`."""
    body, media_type = await shipments.label(
        session=session,
        settings=_settings(request),
        principal=principal,
        shipment_id=shipment_id,
        fmt=format,
    )
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'inline; filename="label-{shipment_id}.{format}"'},
    )


@router.get(
    "/orders/{order_id}",
    response_model=ShipmentPublic,
    responses=responses(ShipmentNotFoundError, UnauthorizedError),
)
async def get_order_shipment(
    order_id: Uuid, session: SessionDep, principal: CurrentUser
) -> ShipmentPublic:
    """The shipment of an order (its owner or an admin)."""
    return await shipments.for_order(session=session, principal=principal, order_id=order_id)


@router.get(
    "/track/{tracking_number}",
    response_model=TrackingPublic,
    responses=responses(ShipmentNotFoundError),
)
async def track(
    tracking_number: Annotated[str, Path(max_length=40)], session: SessionDep
) -> TrackingPublic:
    """Public tracking: status and carrier events, without personal data."""
    return await shipments.track(session=session, tracking_number=tracking_number)


@router.post(
    "/webhooks/{carrier}",
    response_model=WebhookAck,
    responses=responses(
        InvalidWebhookSignatureError,
        StaleWebhookError,
        UnknownCarrierError,
        InvalidWebhookPayloadError,
    ),
)
async def carrier_webhook(
    carrier: Annotated[str, Path(max_length=40)],
    request: Request,
    session: SessionDep,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> WebhookAck:
    """A carrier's tracking update, HMAC-signed over `timestamp.raw_body`."""
    raw_body = await request.body()
    return await tracking.receive(
        session=session,
        settings=_settings(request),
        carrier=carrier,
        raw_body=raw_body,
        signature=signature,
    )


@router.get("/me/export", response_model=ShippingExport)
async def export_my_data(session: SessionDep, principal: CurrentUser) -> ShippingExport:
    """Everything shipping holds about the caller (used by the users service's export)."""
    return await shipments.export(session=session, principal=principal)
