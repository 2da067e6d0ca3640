"""Prometheus metrics, one registry per running app (no satellite ids as labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Event types this server does not know are labels up to this many, then "other".
UNKNOWN_EVENT_TYPE_LABELS = 50
# How many unknown types are remembered (each is logged once); beyond, none is logged.
UNKNOWN_EVENT_TYPES_REMEMBERED = 1000


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "groundstation_http_requests_total",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.polls = Counter(
            "groundstation_command_polls_total", "Command polls", ["outcome"],
            registry=self.registry,
        )
        self.heartbeats = Counter(
            "groundstation_heartbeats_total", "Heartbeats received", registry=self.registry
        )
        self.events = Counter(
            "groundstation_events_total", "Satellite events", ["outcome"], registry=self.registry
        )
        self.delivery_latency = Histogram(
            "groundstation_command_delivery_seconds",
            "Time from command creation to delivery",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "groundstation_pending_commands", "Pending commands", registry=self.registry
        )
        self.online_satellites = Gauge(
            "groundstation_online_satellites", "Satellites online", registry=self.registry
        )
        self.subscriptions = Gauge(
            "groundstation_subscriptions", "Open subscriptions and streams",
            registry=self.registry,
        )
        self.flush_failures = Counter(
            "groundstation_heartbeat_flush_failures_total", "Failed heartbeat flushes",
            registry=self.registry,
        )
        self.history_dropped = Counter(
            "groundstation_heartbeat_history_dropped_total",
            "Heartbeat history rows dropped because the buffer was full (oldest first)",
            registry=self.registry,
        )
        self.unknown_events = Counter(
            "groundstation_unknown_events_total",
            f"Stored events of types this server does not know, by type (the first "
            f"{UNKNOWN_EVENT_TYPE_LABELS} types seen, then other)",
            ["type"], registry=self.registry,
        )
        self._unknown_types: dict[str, str] = {}  # type -> its label

    def count_unknown_events(self, event_type: str, amount: int) -> bool:
        """Count `amount` stored events of an unknown type; True the first time the type
        is seen (for the caller to log it once)."""
        label = self._unknown_types.get(event_type)
        new = label is None
        if label is None:
            label = event_type if len(self._unknown_types) < UNKNOWN_EVENT_TYPE_LABELS \
                else "other"
            if len(self._unknown_types) < UNKNOWN_EVENT_TYPES_REMEMBERED:
                self._unknown_types[event_type] = label
            else:
                new = False
        self.unknown_events.labels(type=label).inc(amount)
        return new
