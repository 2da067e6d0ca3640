"""Credentials: key derivation, satellite API keys, registration tokens, passwords."""
