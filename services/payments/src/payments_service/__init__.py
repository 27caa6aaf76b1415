"""The payments service: Stripe PaymentIntents with manual capture, 3-D Secure, webhooks,
refunds and risk checks."""
