"""The shipping service: carriers, rate tables, quotes, shipments, labels, carrier webhooks."""
