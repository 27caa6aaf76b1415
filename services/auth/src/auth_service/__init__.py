"""The auth service: credentials, tokens, MFA, login history and password resets."""
