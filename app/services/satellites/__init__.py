"""Satellites as people manage them: registration tokens, registration and
re-registration, and the administrative changes (disable, rotate key, delete).

May use: `common`, `fleet`, `commands`.
"""
