"""The users service: Profiles, addresses, notification preferences and wishlists."""
