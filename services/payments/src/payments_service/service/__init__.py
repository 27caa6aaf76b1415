"""Business rules of the payments service, one module per topic."""
