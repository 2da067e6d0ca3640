"""Diagnostics: what `groundstation doctor` checks about an installation and what it
tells the operator to fix (docs/operations.md §3): the settings, the database and its
schema, Redis, the secret key and the clock.

May use: no other domain; the infrastructure (`db`, `db_problems`, `redis_probe`) and
the settings.
"""
