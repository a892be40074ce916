"""Credentials: connections and their tokens, OAuth, the vault that seals them, and redaction of
secrets."""
