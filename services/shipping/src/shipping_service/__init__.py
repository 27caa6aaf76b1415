"""The shipping service: Carriers, rate tables, quotes, shipments, labels and carrier tracking webhooks."""
