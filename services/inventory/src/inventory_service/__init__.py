"""The inventory service: Stock levels per SKU and the reservations of the checkout saga."""
