"""Business rules of the notifications service, one module per topic."""
