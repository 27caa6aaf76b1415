"""The orders service: Carts, coupons, orders and their status history: where the checkout saga starts."""
