"""Alerts: the built-in rules (`rules.py`), evaluated from the streams the service
already has (`engine.py`: bus messages and the fleet in memory, never a database poll
per satellite); one open alert per rule and subject, resolved when its condition
clears, acknowledged or silenced by people (`lifecycle.py`); scoped reads
(`reads.py`); webhooks, signed and retried durably (`webhooks.py`, `delivery.py`).
See docs/alerts.md.

May use: people, fleet, common.
"""
