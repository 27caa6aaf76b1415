"""Business rules of the users service, one module per topic."""
