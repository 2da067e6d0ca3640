"""Random JSON on every satellite request body and query never yields a 5xx."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models.enums import SatelliteType
from tests.fixtures.satellites import TestSatellite, satellite_factory
from tests.fixtures.threaded import ThreadedServer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=16,
)


def shaped(*keys: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the route's own keys (random values) plus random extras."""
    return st.builds(
        lambda known, extra: {**extra, **known},
        st.fixed_dictionaries({}, optional={key: json_values for key in keys}),
        st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    )


heartbeat_bodies = json_values | shaped(
    "status", "system_metrics", "processes", "error_count", "version", "satellite_url"
) | st.builds(
    lambda metrics, processes: {"status": "active", "system_metrics": metrics,
                                "processes": processes},
    shaped("cpu_usage_percent", "memory_usage_mb", "disk_usage_percent", "uptime_seconds"),
    st.lists(shaped("id", "server_name", "status", "health_status", "performance_metrics"),
             max_size=3),
)
result_bodies = json_values | shaped("command_id", "status", "result", "error", "error_message")
registration_bodies = json_values | shaped("name", "capabilities", "satellite_url", "system_info")
poll_queries = st.dictionaries(
    st.sampled_from(["limit", "wait", "last_poll", "other"]), st.text(max_size=12), max_size=3
)

FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Client:
    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)

    def send(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
             ) -> int:
        self._connection.request(method, path, body=body, headers=headers)
        response = self._connection.getresponse()
        response.read()
        return response.status


def _satellite(server: ThreadedServer) -> TestSatellite:
    return server.run(satellite_factory(server.rt)(satellite_type=SatelliteType.GLOBAL))


def test_random_heartbeat_and_result_bodies_never_5xx(threaded_server: ThreadedServer) -> None:
    satellite = _satellite(threaded_server)
    client = Client(threaded_server.base_url)

    @FUZZ
    @given(heartbeat_bodies, result_bodies)
    def check(heartbeat: Any, result: Any) -> None:
        status = client.send("POST", satellite.path("heartbeat"), satellite.headers,
                             json.dumps(heartbeat).encode())
        assert status < 500, heartbeat
        status = client.send("POST", satellite.path("command-result"), satellite.headers,
                             json.dumps(result).encode())
        assert status < 500, result

    check()


def test_random_registration_bodies_and_poll_queries_never_5xx(
    threaded_server: ThreadedServer,
) -> None:
    satellite = _satellite(threaded_server)
    client = Client(threaded_server.base_url)
    bogus_token = {"Authorization": "Bearer deploystack_satellite_global_abc.def.ghi",
                   "Content-Type": "application/json"}

    @FUZZ
    @given(registration_bodies, poll_queries, st.binary(max_size=64))
    def check(registration: Any, query: dict[str, str], raw: bytes) -> None:
        status = client.send("POST", "/api/satellites/register", bogus_token,
                             json.dumps(registration).encode())
        assert status < 500, registration
        status = client.send("GET", f"{satellite.path('commands')}?{urlencode(query)}",
                             satellite.headers)
        assert status < 500, query
        status = client.send("POST", satellite.path("heartbeat"), satellite.headers, raw)
        assert status < 500, raw

    check()


def test_absurdly_nested_json_is_a_validation_error(threaded_server: ThreadedServer) -> None:
    satellite = _satellite(threaded_server)
    client = Client(threaded_server.base_url)
    for path in ("heartbeat", "command-result"):
        status = client.send("POST", satellite.path(path), satellite.headers, b"[" * 100_000)
        assert status == 400
