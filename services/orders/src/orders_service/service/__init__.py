"""Business rules of the orders service, one module per topic."""
