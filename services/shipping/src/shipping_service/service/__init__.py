"""Business rules of the shipping service, one module per topic."""
