"""The orders service: carts, coupons, orders and their status history.

Where the checkout saga starts."""
