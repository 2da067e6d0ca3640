"""Measure the hot paths against a bare aiohttp endpoint, in one run (docs/architecture.md §7).

    .venv/bin/python -m benchmarks.run [--satellites N] [--duration S] [--tool wrk|python]
                                       [--paths poll,heartbeat,events,dashboard,config]

Starts a bare aiohttp JSON endpoint and a real `groundstation serve` (a fresh
SQLite file) in separate processes, prepares N active satellites, warms their
keys up with one heartbeat and one poll each, then measures in turn: the bare
endpoint, then the chosen paths (default: idle authenticated polls, heartbeats;
also event ingestion in 100-event batches, the GraphQL dashboard query of a
global admin, and config fetches, 200 and 304).
Prints a markdown table with the ratios to the bare endpoint next to the budgets
and writes the numbers as JSON to benchmarks/results/. Never run in CI; timings
are never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from app.config import Settings, load_settings
from benchmarks.fleet import (
    DASHBOARD_QUERY,
    DASHBOARD_SATELLITES,
    EVENTS_PER_BATCH,
    HEARTBEAT_BODY,
    BenchInstallation,
    BenchSatellite,
    DatabaseObserver,
    events_body,
    prepare_fleet,
    prepare_installation,
    prepare_session,
)
from benchmarks.load import LoadResult, Target, run_load, wrk_available

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# docs/architecture.md §7: fraction of bare throughput
BUDGETS = {"poll": 0.25, "heartbeat": 0.08, "dashboard": 0.05}
EVENTS_BUDGET = 20_000  # docs/architecture.md §7: events/s on SQLite, 100-event batches
PATHS = ("poll", "heartbeat", "events", "dashboard", "config", "config_304")
DEFAULT_PATHS = "poll,heartbeat"
# Generous per-satellite poll and events limits so the benchmark measures the path, not
# the limiter (the limiter still runs on every request; it just never refuses).
RATE_LIMIT_OVERRIDE = "1000000"


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Idle poll and heartbeat throughput of Groundstation as a ratio of a bare "
        "aiohttp JSON endpoint measured in the same run (docs/architecture.md §7).",
    )
    parser.add_argument("--satellites", type=int, default=2000,
                        help="active satellites to spread requests over (default 2,000: "
                        "enough distinct ones that each flush writes hundreds)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of load before each measurement (default 2)")
    parser.add_argument("--connections", type=int, default=50,
                        help="concurrent connections (default 50)")
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads (default 1: leave the other core to the server)")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator (default: wrk when installed, else python)")
    parser.add_argument("--paths", type=_paths, default=_paths(DEFAULT_PATHS),
                        help="comma-separated paths to measure after the bare endpoint: "
                        f"{', '.join(PATHS[:-1])} (config measures 200 and 304) "
                        f"(default {DEFAULT_PATHS})")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR,
                        help=f"directory for the JSON results (default {RESULTS_DIR})")
    return parser.parse_args(argv)


def _paths(text: str) -> list[str]:
    chosen: list[str] = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        if name not in PATHS[:-1]:
            raise argparse.ArgumentTypeError(f"unknown path {name!r}; choose from "
                                             f"{', '.join(PATHS[:-1])}")
        chosen.extend(["config", "config_304"] if name == "config" else [name])
    if not chosen:
        raise argparse.ArgumentTypeError("name at least one path")
    return [name for name in PATHS if name in chosen]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line of a child (the URL `groundstation serve` prints at start)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("the server printed no URL in time")
    line = process.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"the server exited with status {process.wait()}")
    return line


@contextlib.contextmanager
def child(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A child process that is stopped (SIGTERM, then SIGKILL) when the block ends."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_env(database: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"sqlite://{database}",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "GROUNDSTATION_LOG_LEVEL": "WARNING",
        "GROUNDSTATION_POLL_RATE_PER_SECOND": RATE_LIMIT_OVERRIDE,
        "GROUNDSTATION_POLL_BURST": RATE_LIMIT_OVERRIDE,
        "GROUNDSTATION_EVENTS_RATE_PER_SECOND": RATE_LIMIT_OVERRIDE,
        "GROUNDSTATION_EVENTS_BURST": RATE_LIMIT_OVERRIDE,
    })
    return env


def warm_up(base_url: str, fleet: list[BenchSatellite]) -> None:
    """One heartbeat (activation, key verified once and cached) and one poll per satellite."""
    for satellite in fleet:
        for method, suffix, body in (("POST", "heartbeat", HEARTBEAT_BODY),
                                     ("GET", "commands", None)):
            request = urllib.request.Request(  # noqa: S310 - local URL
                f"{base_url}/api/satellites/{satellite.id}/{suffix}", method=method,
                data=body.encode() if body else None,
                headers={"Authorization": satellite.authorization,
                         "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                if response.status != 200:
                    raise RuntimeError(f"warm-up {suffix} answered {response.status}")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    name: str, args: argparse.Namespace, tool: str, base_url: str, targets: list[Target],
    method: str = "GET", body: str | None = None,
    before_measuring: Callable[[], None] | None = None, server_pid: int | None = None,
) -> LoadResult:
    def load(duration: float) -> LoadResult:
        return run_load(tool, base_url, targets, method=method, body=body, duration=duration,
                        connections=args.connections, threads=args.threads)

    if args.warmup > 0:
        warmed = load(args.warmup)
        progress(f"  warm-up: {warmed.requests:,} requests")
    if before_measuring is not None:
        before_measuring()
    progress(f"measuring {name} for {args.duration:g} s with {tool}")
    cpu_before = None if server_pid is None else process_cpu_seconds(server_pid)
    result = load(args.duration)
    cpu_after = None if server_pid is None else process_cpu_seconds(server_pid)
    if cpu_before is not None and cpu_after is not None:
        result = replace(result, server_cpu_seconds=cpu_after - cpu_before)
    per_request = result.server_cpu_us_per_request
    progress(f"  {result.requests_per_second:,.0f} req/s, {result.non_2xx} non-2xx, "
             f"{result.socket_errors} socket errors, p99 {result.latency_p99_ms:.1f} ms"
             + ("" if per_request is None else f", server CPU {per_request:,.0f} µs/request"))
    return result


LABELS = {"poll": "idle authenticated poll", "heartbeat": "heartbeat",
          "events": f"event ingestion ({EVENTS_PER_BATCH}-event batches)",
          "dashboard": f"GraphQL dashboard query ({DASHBOARD_SATELLITES} satellites)",
          "config": "config fetch (200)", "config_304": "config fetch (304, If-None-Match)"}


def events_per_second(result: LoadResult) -> float:
    return result.requests_per_second * EVENTS_PER_BATCH


def ratio(results: dict[str, LoadResult], name: str) -> float:
    bare = results["bare"].requests_per_second
    return results[name].requests_per_second / bare if bare else 0.0


def markdown_table(results: dict[str, LoadResult]) -> str:
    def cpu(result: LoadResult) -> str:
        per_request = result.server_cpu_us_per_request
        return "" if per_request is None else f"{per_request:,.0f}"

    bare = results["bare"]
    rows = [
        "| path | req/s | ratio to bare aiohttp | budget | within budget "
        "| server CPU µs/request |",
        "|---|---:|---:|---:|---|---:|",
        f"| bare aiohttp JSON endpoint | {bare.requests_per_second:,.0f} | 100% | | "
        f"| {cpu(bare)} |",
    ]
    for name, label in LABELS.items():
        if name not in results:
            continue
        share = ratio(results, name)
        rate = f"{results[name].requests_per_second:,.0f}"
        if name in BUDGETS:
            verdict = "yes" if share >= BUDGETS[name] else "**no**"
            budget = f"≥ {BUDGETS[name]:.0%}"
        elif name == "events":
            events = events_per_second(results[name])
            rate += f" ({events:,.0f} events/s)"
            verdict = "yes" if events >= EVENTS_BUDGET else "**no**"
            budget = f"≥ {EVENTS_BUDGET:,} events/s"
        else:
            verdict, budget = "", "none"
        shown = f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"
        rows.append(f"| {label} | {rate} | {shown} | {budget} | {verdict} "
                    f"| {cpu(results[name])} |")
    return "\n".join(rows)


@dataclass
class Measurements:
    results: dict[str, LoadResult]
    database_changed_during_polls: bool | None
    history_rows_written: int | None


def settled_count(observer: DatabaseObserver, table: str, settle: float,
                  limit: float = 60.0) -> int:
    """The table's row count once the flusher has caught up: unchanged over `settle`
    seconds (a busy server may take several flush intervals to write a run's rows)."""
    deadline = time.monotonic() + limit
    count = observer.count(table)
    while True:
        time.sleep(settle)
        latest = observer.count(table)
        if latest == count or time.monotonic() > deadline:
            return latest
        count = latest


def fetch(base_url: str, satellite: BenchSatellite, method: str, suffix: str,
          body: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request as a satellite; a 304 is returned, not raised."""
    request = urllib.request.Request(  # noqa: S310 - local URL
        f"{base_url}/api/satellites/{satellite.id}/{suffix}", method=method,
        data=body.encode() if body else None,
        headers={"Authorization": satellite.authorization, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def check_events(base_url: str, satellite: BenchSatellite, body: str) -> None:
    """The benchmark batch must be stored whole: 100 processed, no failure entries."""
    status, _, answer = fetch(base_url, satellite, "POST", "events", body)
    payload = json.loads(answer)
    if status != 200 or payload.get("processed") != EVENTS_PER_BATCH or payload.get("failed"):
        raise RuntimeError(f"the benchmark batch was not accepted whole: {status} {payload}")


def check_dashboard(base_url: str, session: str, body: str) -> None:
    """The benchmark query must answer data for the fleet, without errors."""
    request = urllib.request.Request(  # noqa: S310 - local URL
        f"{base_url}/graphql", method="POST", data=body.encode(),
        headers={"Authorization": f"Bearer {session}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        answer = json.loads(response.read())
    edges = (answer.get("data") or {}).get("satellites", {}).get("edges", [])
    if answer.get("errors") or len(edges) != DASHBOARD_SATELLITES:
        raise RuntimeError(f"the dashboard query did not answer {DASHBOARD_SATELLITES} "
                           f"satellites: {answer}")


def config_etags(base_url: str, fleet: list[BenchSatellite]) -> dict[str, str]:
    """Each satellite's config ETag; checks that sending it back answers 304."""
    etags: dict[str, str] = {}
    for satellite in fleet:
        status, headers, _ = fetch(base_url, satellite, "GET", "config")
        if status != 200 or "ETag" not in headers:
            raise RuntimeError(f"config answered {status} without an ETag")
        etags[satellite.id] = headers["ETag"]
    probe = fleet[0]
    request = urllib.request.Request(  # noqa: S310 - local URL
        f"{base_url}/api/satellites/{probe.id}/config",
        headers={"Authorization": probe.authorization, "If-None-Match": etags[probe.id]},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raise RuntimeError(f"If-None-Match answered {response.status}, not 304")
    except urllib.error.HTTPError as error:
        if error.code != 304:
            raise
    return etags


def measure_all(args: argparse.Namespace, tool: str, settings: Settings, env: dict[str, str],
                database: Path, fleet: list[BenchSatellite],
                installation: BenchInstallation | None, session: str | None) -> Measurements:
    """Start both servers, warm up, then measure bare → the chosen paths in one run."""
    bare_port = free_port()
    progress("starting the bare aiohttp endpoint and `groundstation serve`")
    with (
        child([sys.executable, "-m", "benchmarks.bare_server", "--port", str(bare_port)],
              env) as bare,
        child([sys.executable, "-m", "app.cli", "serve", "--port", "0"], env) as server,
    ):
        base_url = read_line(server, timeout=60)
        bare_url = f"http://127.0.0.1:{bare_port}"
        wait_for_http(f"{bare_url}/json")
        wait_for_http(f"{base_url}/api/health")
        progress(f"warming up {len(fleet)} satellites against {base_url}")
        warm_up(base_url, fleet)
        settle = settings.flush_interval_seconds * 3  # the flusher writes what is buffered
        time.sleep(settle)

        observer = DatabaseObserver(database)
        results = {"bare": measure("bare aiohttp JSON", args, tool, bare_url, [Target("/json")],
                                   server_pid=bare.pid)}
        changed: bool | None = None
        written: int | None = None
        if "poll" in args.paths:
            polls = [Target(f"/api/satellites/{s.id}/commands?limit=10", s.authorization)
                     for s in fleet]
            version_before = observer.data_version()
            results["poll"] = measure("idle authenticated poll", args, tool, base_url, polls,
                                      server_pid=server.pid)
            changed = observer.data_version() != version_before

        if "heartbeat" in args.paths:
            history: list[int] = []

            def count_history_after_warm_up() -> None:
                # the warm-up's rows land first
                history.append(settled_count(observer, "satellite_heartbeats", settle))

            beats = [Target(f"/api/satellites/{s.id}/heartbeat", s.authorization)
                     for s in fleet]
            results["heartbeat"] = measure(
                "heartbeat", args, tool, base_url, beats, method="POST", body=HEARTBEAT_BODY,
                before_measuring=count_history_after_warm_up, server_pid=server.pid,
            )
            written = settled_count(observer, "satellite_heartbeats", settle) - history[0]

        if "events" in args.paths and installation is not None:
            body = events_body(installation)
            check_events(base_url, fleet[0], body)
            posts = [Target(f"/api/satellites/{s.id}/events", s.authorization) for s in fleet]
            results["events"] = measure(f"event ingestion ({EVENTS_PER_BATCH}-event batches)",
                                        args, tool, base_url, posts, method="POST", body=body,
                                        server_pid=server.pid)

        if "dashboard" in args.paths and session is not None:
            body = json.dumps({"query": DASHBOARD_QUERY})
            check_dashboard(base_url, session, body)
            queries = [Target("/graphql", f"Bearer {session}")]
            results["dashboard"] = measure("GraphQL dashboard query", args, tool, base_url,
                                           queries, method="POST", body=body,
                                           server_pid=server.pid)

        if "config" in args.paths:
            etags = config_etags(base_url, fleet)
            fetches = [Target(f"/api/satellites/{s.id}/config", s.authorization) for s in fleet]
            results["config"] = measure("config fetch (200)", args, tool, base_url, fetches,
                                        server_pid=server.pid)
            conditional = [Target(f"/api/satellites/{s.id}/config", s.authorization, etags[s.id])
                           for s in fleet]
            results["config_304"] = measure("config fetch (304)", args, tool, base_url,
                                            conditional, server_pid=server.pid)
        observer.close()
    return Measurements(results, changed, written)


def report(args: argparse.Namespace, tool: str, measured: Measurements) -> dict[str, object]:
    results = measured.results
    return {
        "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "parameters": {"tool": tool, "satellites": args.satellites, "duration": args.duration,
                       "warmup": args.warmup, "connections": args.connections,
                       "threads": args.threads, "poll_rate_per_second": RATE_LIMIT_OVERRIDE,
                       "poll_burst": RATE_LIMIT_OVERRIDE, "paths": args.paths,
                       "events_rate_per_second": RATE_LIMIT_OVERRIDE,
                       "events_burst": RATE_LIMIT_OVERRIDE,
                       "events_per_batch": EVENTS_PER_BATCH},
        "results": {name: result.as_dict() for name, result in results.items()},
        "ratios": {name: round(ratio(results, name), 4) for name in results if name != "bare"},
        "events_per_second": round(events_per_second(results["events"]), 1)
        if "events" in results else None,
        "budgets": {**BUDGETS, "events_per_second": EVENTS_BUDGET},
        "database_changed_during_idle_polls": measured.database_changed_during_polls,
        "heartbeat_history_rows_written": measured.history_rows_written,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tool = args.tool if args.tool != "auto" else ("wrk" if wrk_available() else "python")
    if tool == "wrk" and not wrk_available():
        progress("wrk is not installed (apt-get install wrk); use --tool python")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="groundstation-bench-"))
    database = workdir / "bench.db"
    env = server_env(database)
    settings = load_settings(environ=env, dotenv=None)
    try:
        progress(f"preparing {args.satellites} active satellites in {database}")
        fleet = asyncio.run(prepare_fleet(settings, args.satellites))
        installation = (asyncio.run(prepare_installation(settings))
                        if {"events", "config"} & set(args.paths) else None)
        session = asyncio.run(prepare_session(settings)) if "dashboard" in args.paths else None
        measured = measure_all(args, tool, settings, env, database, fleet, installation,
                               session)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report(args, tool, measured), indent=2) + "\n", encoding="utf-8")
    progress(f"results written to {path}")
    print(markdown_table(measured.results))
    print()
    if measured.database_changed_during_polls is not None:
        print(f"Database changed during the idle-poll run: "
              f"{'yes' if measured.database_changed_during_polls else 'no'}.")
    if measured.history_rows_written is not None:
        beats = measured.results["heartbeat"]
        print(f"Heartbeats answered in the measured run: {beats.requests - beats.non_2xx:,}; "
              f"history rows the flusher wrote for them: {measured.history_rows_written:,}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
