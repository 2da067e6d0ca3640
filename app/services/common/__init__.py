"""Shared building blocks of every domain: actors and the audit trail, the clock,
rate-limit rules, bulk storage helpers, JSON-object checks and the context every
service receives.

May use: `app.models`, `app.errors`, `app.config` and the infrastructure below the
services (`auth`, `bus`, `limits`, `wire`, `db`). Imports no other domain.
"""
