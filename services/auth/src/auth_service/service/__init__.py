"""Business rules of the auth service, one module per topic."""
