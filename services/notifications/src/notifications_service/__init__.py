"""The notifications service: Email and SMS rendered from templates when domain events happen."""
