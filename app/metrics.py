"""Prometheus metrics, one registry per running app (no satellite ids as labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
