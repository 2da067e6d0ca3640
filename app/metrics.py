"""Prometheus metrics, one registry per running app (no satellite ids as labels).

Every metric is listed in docs/operations.md §5.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from tortoise import connections

from app.version import VERSION

# Request latency per route template: sub-millisecond answers from memory up to held
# long polls (30 s at most).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)

# Event types this server does not know are labels up to this many, then "other".
UNKNOWN_EVENT_TYPE_LABELS = 50
# How many unknown types are remembered (each is logged once); beyond, none is logged.
UNKNOWN_EVENT_TYPES_REMEMBERED = 1000


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # The same collectors prometheus_client puts on its global registry, on ours.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)  # registers nothing off CPython
        Gauge(
            "groundstation_build_info", "The running version (always 1)",
            ["version", "python"], registry=self.registry,
        ).labels(VERSION, platform.python_version()).set(1)
        self.requests = Counter(
            "groundstation_http_requests_total",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "groundstation_http_request_duration_seconds",
            "HTTP request duration by route template (long polls include their wait)",
            ["method", "route"], buckets=REQUEST_BUCKETS, registry=self.registry,
        )
        self.database_up = Gauge(
            "groundstation_database_up",
            "1 when the database answered SELECT 1 at the last scrape, else 0",
            registry=self.registry,
        )
        self.registry.register(_DatabasePoolCollector())
        self.commands_created = Counter(
            "groundstation_commands_created_total", "Commands queued by this instance",
            registry=self.registry,
        )
        self.commands_delivered = Counter(
            "groundstation_commands_delivered_total",
            "Command deliveries to polling satellites (a redelivery after a lapsed lease "
            "counts again)", registry=self.registry,
        )
        self.command_results = Counter(
            "groundstation_command_results_total",
            "Command results reported by satellites, by outcome", ["outcome"],
            registry=self.registry,
        )
        self.held_polls = Gauge(
            "groundstation_held_polls", "Long polls waiting for a command on this instance",
            registry=self.registry,
        )
        self.polls = Counter(
            "groundstation_command_polls_total", "Command polls", ["outcome"],
            registry=self.registry,
        )
        self.heartbeats = Counter(
            "groundstation_heartbeats_total", "Heartbeats received", registry=self.registry
        )
        self.key_verifications = Counter(
            "groundstation_api_key_verifications_total",
            "Requests whose API key was verified with Argon2 (cache misses), by outcome",
            ["outcome"], registry=self.registry,
        )
        self.events = Counter(
            "groundstation_events_total", "Satellite events", ["outcome"], registry=self.registry
        )
        self.alert_transitions = Counter(
            "groundstation_alert_transitions_total",
            "Alert transitions made by this instance (opened, resolved, acknowledged, …)",
            ["rule", "transition"], registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "groundstation_webhook_deliveries_total",
            "Webhook delivery attempts, by outcome (delivered, retry, failed)", ["outcome"],
            registry=self.registry,
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
        self.flush_duration = Histogram(
            "groundstation_heartbeat_flush_seconds",
            "Duration of heartbeat flushes that wrote something",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
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


    def watch_redis(self, redis: RedisState) -> None:
        """Export the Redis bus's state (`REDIS_URL` set): read at each scrape."""
        self.registry.register(_RedisCollector(redis))


class RedisState(Protocol):
    """What the Redis bus tells about itself (app/bus/redis.py)."""

    @property
    def connected(self) -> bool: ...

    @property
    def publish_failures(self) -> int: ...

    reconnects: int


class _RedisCollector(Collector):
    def __init__(self, redis: RedisState) -> None:
        self._redis = redis

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "groundstation_redis_connected",
            "1 while the Redis bus's subscription connection is up, else 0",
            value=1 if self._redis.connected else 0)
        yield CounterMetricFamily(
            "groundstation_bus_publish_failures",
            "Bus messages that did not reach Redis (failed, or skipped during an outage)",
            value=self._redis.publish_failures)
        yield CounterMetricFamily(
            "groundstation_bus_reconnects",
            "Times the Redis bus's subscription connection was re-established",
            value=self._redis.reconnects)


class _DatabasePoolCollector(Collector):
    """The PostgreSQL connection pool (asyncpg's, inside tortoise), read at each scrape;
    nothing on SQLite or before the database is open."""

    def collect(self) -> Iterator[Metric]:
        pool = _asyncpg_pool()
        if pool is None:
            return
        size = pool.get_size()
        yield GaugeMetricFamily("groundstation_database_pool_size",
                                "Open connections in this process's PostgreSQL pool",
                                value=size)
        yield GaugeMetricFamily("groundstation_database_pool_in_use",
                                "Connections of the pool lent to a query or transaction",
                                value=size - pool.get_idle_size())
        yield GaugeMetricFamily("groundstation_database_pool_max",
                                "The pool's largest size (GROUNDSTATION_DB_POOL_MAX)",
                                value=pool.get_max_size())


def _asyncpg_pool() -> Any:
    try:
        client = connections.get("default")
    except Exception:  # noqa: BLE001 - not configured (yet): no pool to describe
        return None
    pool = getattr(client, "_pool", None)
    return pool if hasattr(pool, "get_idle_size") else None
