from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import APIKeyHeader
from pydantic import StringConstraints, WithJsonSchema
from redis.asyncio import Redis
from shopkit.db import ReadSessionDep, SessionDep
from shopkit.params import CEP_PATTERN, SKU_PATTERN, Cep, OptionalUuid7, Uuid7
from shopkit.problems import UnauthorizedError, responses
from shopkit.security import CurrentUser

from shipping_service.config import ShippingSettings
from shipping_service.errors import (
    CepNotFoundError,
    InvalidWebhookPayloadError,
    InvalidWebhookSignatureError,
    QuoteTooHeavyError,
    ShipmentCancelledError,
    ShipmentNotFoundError,
    ShipmentOnHoldError,
    UnknownCarrierError,
    UnknownSkuError,
)
from shipping_service.rates import CARRIERS
from shipping_service.schemas import (
    MAX_LINE_QUANTITY,
    MAX_QUOTE_ITEMS,
    CepPublic,
    QuoteItem,
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

Uuid = Uuid7
QUOTE_ITEM_PATTERN = f"^{SKU_PATTERN[1:-1]}(?::(?:[1-9]|[1-4][0-9]|50))?$"
"""`SKU:QUANTITY` (quantity 1 to `MAX_LINE_QUANTITY`, 1 when left out)."""
QUOTE_RESPONSES: dict[int | str, dict[str, Any]] = responses(UnknownSkuError, QuoteTooHeavyError)
CARRIER_PATTERN = "^(?:" + "|".join(sorted(CARRIERS)) + ")$"
TrackingNumber = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,40}$")]
LabelFormat = Literal["pdf", "zpl"]

carrier_signature_scheme = APIKeyHeader(
    name=SIGNATURE_HEADER,
    scheme_name="carrierSignature",
    description='`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the '
    "carrier's webhook secret. Missing, wrong or outside the tolerance window: 401.",
    auto_error=False,
)


def _settings(request: Request) -> ShippingSettings:
    settings: ShippingSettings = request.app.state.settings
    return settings


@router.post("/quotes", response_model=QuoteResponse, responses=QUOTE_RESPONSES)
async def create_quotes(
    body: QuoteRequest, session: ReadSessionDep, request: Request
) -> QuoteResponse:
    """Signed shipping options for these items to this CEP (orders verifies the quote id)."""
    return await quotes.quote(
        session=session,
        settings=_settings(request),
        destination_cep=body.destination_cep,
        items=body.items,
    )


@router.get("/quotes", response_model=QuoteResponse, responses=QUOTE_RESPONSES)
async def get_quotes(
    session: ReadSessionDep,
    request: Request,
    destination_cep: Annotated[Cep, Query()],
    items: Annotated[
        list[Annotated[str, StringConstraints(pattern=QUOTE_ITEM_PATTERN)]],
        Query(
            min_length=1,
            max_length=MAX_QUOTE_ITEMS,
            description=f"SKU:QUANTITY (at most {MAX_LINE_QUANTITY}), repeated; each sku once",
        ),
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_QUOTE_ITEMS,
                "items": {"type": "string", "pattern": QUOTE_ITEM_PATTERN},
            }
        ),
    ],
) -> QuoteResponse:
    """The same as `POST /quotes`, for links and caches: `?destination_cep=&items=SKU:2`."""
    return await quotes.quote(
        session=session,
        settings=_settings(request),
        destination_cep=destination_cep,
        items=[_quote_item(item) for item in items],
    )


def _quote_item(param: str) -> QuoteItem:
    """`SKU:QUANTITY` as the pattern above admits it (the quantity defaults to 1)."""
    sku, _, quantity = param.partition(":")
    return QuoteItem(sku=sku, quantity=int(quantity or 1))


@router.get("/cep/{cep}", response_model=CepPublic, responses=responses(CepNotFoundError))
async def lookup_cep(cep: Annotated[str, Path(pattern=CEP_PATTERN)], request: Request) -> CepPublic:
    redis: Redis = request.app.state.redis
    http: httpx.AsyncClient = request.app.state.http
    return await cep_lookup.lookup(value=cep, settings=_settings(request), redis=redis, http=http)


@router.get("/shipments", response_model=ShipmentList)
async def list_my_shipments(
    session: SessionDep,
    principal: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: OptionalUuid7 = None,
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
        **responses(
            ShipmentNotFoundError, UnauthorizedError, ShipmentOnHoldError, ShipmentCancelledError
        ),
        200: {"content": {"application/pdf": {}, "application/zpl": {}}},
    },
)
async def get_label(
    shipment_id: Uuid,
    session: SessionDep,
    principal: CurrentUser,
    request: Request,
    format: LabelFormat = "pdf",
) -> Response:
    """The printable label: an A6 PDF, or ZPL II with `?format=zpl`. None while the shipment
    is held for the review of its order's payment (409)."""
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
async def track(tracking_number: TrackingNumber, session: SessionDep) -> TrackingPublic:
    """Public tracking: status and carrier events, without personal data."""
    return await shipments.track(session=session, tracking_number=tracking_number)


@router.post(
    "/webhooks/{carrier}",
    response_model=WebhookAck,
    responses=responses(
        InvalidWebhookSignatureError,  # 401, like a stale one
        UnknownCarrierError,
        InvalidWebhookPayloadError,
    ),
)
async def carrier_webhook(
    carrier: Annotated[str, Path(pattern=CARRIER_PATTERN)],
    request: Request,
    session: SessionDep,
    signature: Annotated[str | None, Depends(carrier_signature_scheme)],
) -> WebhookAck:
    """A carrier's tracking update, HMAC-signed over `timestamp.raw_body`. A replayed update
    (same event id) is acknowledged as a `duplicate` and applied once."""
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
