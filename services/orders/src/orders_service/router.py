"""Every route of the orders service: /api/cart, /api/coupons and /api/orders."""

from __future__ import annotations

from fastapi import APIRouter

from orders_service.routes import carts, coupons, orders

router = APIRouter()
router.include_router(carts.router)
router.include_router(coupons.router)
router.include_router(orders.router)
