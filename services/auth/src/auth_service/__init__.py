"""The auth service: Credentials, access and refresh tokens, MFA, login history and password resets."""
