"""The API gateway: the single entry point of REST clients."""
