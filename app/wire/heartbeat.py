"""The heartbeat body (docs/protocol.md §6): repair instead of refuse.

The reference client throws its key away after any non-2xx at start-up, so a
heartbeat is refused (400) only when it cannot be understood: not a JSON
object, no `status` or `system_metrics`, or a value of the wrong JSON type
(a string where a number belongs, a boolean for a number, …). Everything else
is repaired before the field types are checked: numbers out of range are
clamped, non-finite numbers replaced, unknown enum values become `unknown`,
over-long strings and arrays are truncated, characters no database can store
are replaced. Each repair is noted in `repairs` (field names and counts, never
values) so the service can log it with the satellite's id.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Annotated, Any

from pydantic import Field, StrictStr, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.models.enums import HealthStatus, ProcessStatus, ReportedStatus
from app.wire.base import WireModel

MAX_PROCESSES = 500
MAX_PROCESS_ID_LENGTH = 255
MAX_SERVER_NAME_LENGTH = 255
MAX_VERSION_LENGTH = 64
MAX_SATELLITE_URL_LENGTH = 2048
MAX_ERROR_COUNT = 2**31 - 1
MAX_BYTES = 2**63 - 1
# performance_metrics is free-form: kept, but bounded in depth, width and string length.
MAX_METRICS_DEPTH = 4
MAX_METRICS_ITEMS = 50
MAX_METRICS_STRING = 1000

# (low, high) per system metric; the required ones must be present.
_FLOAT_METRICS: dict[str, tuple[float, float]] = {
    "cpu_usage_percent": (0.0, 100.0),
    "memory_usage_mb": (0.0, 1e12),
    "disk_usage_percent": (0.0, 100.0),
    "uptime_seconds": (0.0, 1e12),
}
_INT_METRICS = ("network_rx_bytes", "network_tx_bytes")
_REQUIRED_METRICS = frozenset({"cpu_usage_percent", "memory_usage_mb"})

_KNOWN_VALUES: dict[type, frozenset[str]] = {
    kind: frozenset(member.value for member in kind)
    for kind in (ReportedStatus, ProcessStatus, HealthStatus)
}

StrictNumber = Annotated[float, Field(strict=True)]
StrictInteger = Annotated[int, Field(strict=True)]


class SystemMetrics(WireModel):
    cpu_usage_percent: StrictNumber = Field(ge=0, le=100)
    memory_usage_mb: StrictNumber = Field(ge=0)
    disk_usage_percent: StrictNumber | None = Field(default=None, ge=0, le=100)
    uptime_seconds: StrictNumber | None = Field(default=None, ge=0)
    network_rx_bytes: StrictInteger | None = Field(default=None, ge=0)
    network_tx_bytes: StrictInteger | None = Field(default=None, ge=0)


class ProcessReport(WireModel):
    """One MCP server process as the satellite sees it; keyed by the satellite's own id."""

    id: StrictStr = Field(max_length=MAX_PROCESS_ID_LENGTH)
    server_name: StrictStr | None = Field(default=None, max_length=MAX_SERVER_NAME_LENGTH)
    status: ProcessStatus = ProcessStatus.UNKNOWN
    health_status: HealthStatus = HealthStatus.UNKNOWN
    performance_metrics: dict[str, Any] | None = None


class HeartbeatRequest(WireModel):
    status: ReportedStatus
    system_metrics: SystemMetrics
    processes: list[ProcessReport] | None = Field(default=None, max_length=MAX_PROCESSES)
    error_count: StrictInteger = Field(default=0, ge=0)
    version: StrictStr | None = Field(default=None, max_length=MAX_VERSION_LENGTH)
    satellite_url: StrictStr | None = Field(default=None, max_length=MAX_SATELLITE_URL_LENGTH)
    # Filled by the repair step below, never by the client (a sent value is overwritten).
    repairs: SkipJsonSchema[tuple[str, ...]] = Field(default=(), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _repair(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # refused by the type check ("valid dictionary")
        return _Repairer().body(data)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def clean_text(value: str) -> str:
    """Drop NUL and replace unpaired surrogates: neither survives PostgreSQL (or UTF-8)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


class _Repairer:
    """Repairs a raw body in place of refusing it; wrongly typed values are left for pydantic."""

    def __init__(self) -> None:
        self.notes: Counter[str] = Counter()

    def body(self, raw: dict[str, Any]) -> dict[str, Any]:
        data = dict(raw)
        if "status" in data:
            data["status"] = self.enum(data["status"], ReportedStatus, "status", keep_none=True)
        if isinstance(data.get("system_metrics"), dict):
            data["system_metrics"] = self.metrics(data["system_metrics"])
        if data.get("processes") is not None and isinstance(data["processes"], list):
            data["processes"] = self.processes(data["processes"])
        if _is_number(data.get("error_count")):
            data["error_count"] = self.integer(data["error_count"], MAX_ERROR_COUNT, "error_count")
        elif data.get("error_count") is None:
            data.pop("error_count", None)
        for name, limit in (("version", MAX_VERSION_LENGTH),
                            ("satellite_url", MAX_SATELLITE_URL_LENGTH)):
            if isinstance(data.get(name), str):
                data[name] = self.text(data[name], limit, name) or None
        data["repairs"] = tuple(f"{what} ({count}x)" if count > 1 else what
                                for what, count in sorted(self.notes.items()))
        return data

    def metrics(self, raw: dict[str, Any]) -> dict[str, Any]:
        metrics = dict(raw)
        for name, (low, high) in _FLOAT_METRICS.items():
            value = metrics.get(name)
            if value is None and name not in _REQUIRED_METRICS:
                metrics.pop(name, None)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                metrics[name] = self.number(value, low, high, f"system_metrics.{name}",
                                            required=name in _REQUIRED_METRICS)
                if metrics[name] is None:
                    metrics.pop(name)
        for name in _INT_METRICS:
            value = metrics.get(name)
            if value is None:
                metrics.pop(name, None)
            elif _is_number(value):
                if isinstance(value, float) and math.isnan(value):
                    self.notes[f"system_metrics.{name}: not a number, dropped"] += 1
                    metrics.pop(name)
                else:
                    metrics[name] = self.integer(value, MAX_BYTES, f"system_metrics.{name}")
        return metrics

    def processes(self, raw: list[Any]) -> list[Any]:
        if len(raw) > MAX_PROCESSES:
            self.notes[f"processes: truncated to {MAX_PROCESSES}"] += 1
            raw = raw[:MAX_PROCESSES]
        repaired: list[Any] = []
        for item in raw:
            if not isinstance(item, dict):
                repaired.append(item)  # refused by the type check
                continue
            process = dict(item)
            if isinstance(process.get("id"), str):
                process["id"] = self.text(process["id"], MAX_PROCESS_ID_LENGTH, "processes.id")
                if not process["id"]:
                    self.notes["processes: entry with an empty id dropped"] += 1
                    continue
            if isinstance(process.get("server_name"), str):
                process["server_name"] = self.text(
                    process["server_name"], MAX_SERVER_NAME_LENGTH, "processes.server_name"
                ) or None
            process["status"] = self.enum(process.get("status"), ProcessStatus,
                                          "processes.status")
            process["health_status"] = self.enum(process.get("health_status"), HealthStatus,
                                                 "processes.health_status")
            if isinstance(process.get("performance_metrics"), dict):
                process["performance_metrics"] = self.free_form(
                    process["performance_metrics"], 1, "processes.performance_metrics"
                )
            repaired.append(process)
        return repaired

    def enum(self, value: Any, kind: type[ReportedStatus | ProcessStatus | HealthStatus],
             where: str, *, keep_none: bool = False) -> Any:
        if value is None:
            return None if keep_none else "unknown"
        if not isinstance(value, str):
            return value  # refused by the type check
        if value in _KNOWN_VALUES[kind]:
            return value
        self.notes[f"{where}: unknown value stored as unknown"] += 1
        return "unknown"

    def number(self, value: float, low: float, high: float, where: str, *, required: bool
               ) -> float | None:
        if isinstance(value, float) and math.isnan(value):
            self.notes[f"{where}: not a number" + (", set to 0" if required else ", dropped")] += 1
            return low if required else None
        if value < low or value > high:
            self.notes[f"{where}: clamped to {low:g}..{high:g}"] += 1
            return low if value < low else high
        return float(value)

    def integer(self, value: float, high: int, where: str) -> int:
        if isinstance(value, float) and math.isnan(value):
            self.notes[f"{where}: not a number, set to 0"] += 1
            return 0
        if value < 0 or value > high:
            self.notes[f"{where}: clamped to 0..{high}"] += 1
            return 0 if value < 0 else high
        if isinstance(value, float) and not value.is_integer():
            self.notes[f"{where}: rounded down"] += 1
        return int(value)

    def text(self, value: str, limit: int, where: str) -> str:
        cleaned = clean_text(value)
        if cleaned != value:
            self.notes[f"{where}: unstorable characters replaced"] += 1
        if len(cleaned) > limit:
            self.notes[f"{where}: truncated to {limit} characters"] += 1
            cleaned = cleaned[:limit]
        return cleaned

    def free_form(self, value: Any, depth: int, where: str) -> Any:
        """Keep JSON a database accepts (finite numbers, clean text), bounded in size."""
        if isinstance(value, dict):
            if depth > MAX_METRICS_DEPTH:
                self.notes[f"{where}: nested too deep, dropped"] += 1
                return None
            if len(value) > MAX_METRICS_ITEMS:
                self.notes[f"{where}: truncated to {MAX_METRICS_ITEMS} keys"] += 1
            return {
                self.text(str(key), MAX_METRICS_STRING, where): self.free_form(item, depth + 1,
                                                                              where)
                for key, item in list(value.items())[:MAX_METRICS_ITEMS]
            }
        if isinstance(value, list):
            if depth > MAX_METRICS_DEPTH:
                self.notes[f"{where}: nested too deep, dropped"] += 1
                return None
            if len(value) > MAX_METRICS_ITEMS:
                self.notes[f"{where}: truncated to {MAX_METRICS_ITEMS} items"] += 1
            return [self.free_form(item, depth + 1, where) for item in value[:MAX_METRICS_ITEMS]]
        if isinstance(value, str):
            return self.text(value, MAX_METRICS_STRING, where)
        if isinstance(value, float) and not math.isfinite(value):
            self.notes[f"{where}: non-finite number dropped"] += 1
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_BYTES:
            self.notes[f"{where}: number clamped"] += 1
            return MAX_BYTES if value > 0 else -MAX_BYTES
        return value


__all__ = ["HeartbeatRequest", "ProcessReport", "SystemMetrics", "clean_text"]
