"""Fleet capacity: thousands of simulated satellites against one server, people beside them.

    .venv/bin/python -m benchmarks.capacity [--satellites 10000] [--hold 300] [--json]

One run, on one machine, in this order (docs/operations.md, "Capacity"):

1. a fresh SQLite file; a global admin; `--satellites` registration tokens made
   with `groundstation token create --count N` (timed); a bare aiohttp endpoint
   and `groundstation serve` started as separate processes; the bare endpoint
   measured with wrk as the yardstick of the machine;
2. **bring-up and hold**: `groundstation simulate` registers every satellite
   from its token and holds the fleet at the reference cadence (heartbeat every
   30 s, long polls) for `--hold` seconds after the last one came online;
3. during the hold: **1,000 subscribers** of `satelliteMetrics` see a probe
   satellite's heartbeats, **commands at 20/s** are enqueued through GraphQL and
   timed until a simulated satellite's poll delivered them, and **20 dashboard
   clients** run the README's dashboard query;
4. **restart**: with the fleet running again from its saved credentials, SIGTERM
   the server, start it again on the same port, and time until every satellite's
   key was verified again (`groundstation_api_key_verifications_total`).

Prints every row with its budget and pass/miss, and writes the numbers as JSON
to benchmarks/results/. Never run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import load_settings
from benchmarks import people
from benchmarks.fleet import prepare_fleet, prepare_installation, prepare_session
from benchmarks.load import Target, run_load, wrk_available
from benchmarks.run import RESULTS_DIR, free_port, progress, read_line, wait_for_http

BUDGETS = {
    "hold_heartbeat_p99_ms": 200.0,
    "delivery_p50_ms": 50.0,
    "delivery_p99_ms": 250.0,
    "fanout_p99_ms": 200.0,
    "restart_seconds": 30.0,
    "dashboard_p99_ms": 100.0,
}


@dataclass
class Row:
    name: str
    measured: str
    budget: str
    passed: bool | None

    def markdown(self) -> str:
        verdict = "" if self.passed is None else ("pass" if self.passed else "**miss**")
        return f"| {self.name} | {self.measured} | {self.budget} | {verdict} |"


@dataclass
class Run:
    rows: list[Row] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, measured: str, budget: str, passed: bool | None) -> None:
        self.rows.append(Row(name, measured, budget, passed))
        progress(f"{name}: {measured} ({budget}: "
                 f"{'-' if passed is None else 'pass' if passed else 'MISS'})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.capacity",
        description="How many satellites one machine holds, and what people see meanwhile: "
        "a simulated fleet against a real server, with budgets (docs/operations.md).",
    )
    parser.add_argument("--satellites", type=int, default=10_000,
                        help="satellites in the fleet (default 10,000)")
    parser.add_argument("--hold", type=float, default=300.0,
                        help="seconds to hold the whole fleet online (default 300)")
    parser.add_argument("--subscribers", type=int, default=1000,
                        help="graphql-transport-ws subscribers (default 1,000)")
    parser.add_argument("--commands-per-second", type=float, default=20.0,
                        help="enqueueCommand rate during the hold (default 20)")
    parser.add_argument("--people-seconds", type=float, default=60.0,
                        help="seconds of command traffic during the hold (default 60)")
    parser.add_argument("--skip-restart", action="store_true", help="leave out the restart row")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR,
                        help=f"directory for the JSON results (default {RESULTS_DIR})")
    return parser.parse_args(argv)


def base_env(database: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"sqlite://{database}",
        "SECRET_KEY": "capacity-benchmark-" + os.urandom(16).hex(),
        "GROUNDSTATION_LOG_LEVEL": "WARNING",
        "GROUNDSTATION_ACCESS_LOG": "false",
    })
    return env


def cli(env: dict[str, str], *arguments: str) -> str:
    completed = subprocess.run([sys.executable, "-m", "app.cli", *arguments], env=env,
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"groundstation {' '.join(arguments)} failed: {completed.stderr}")
    return completed.stdout


class Server:
    """`groundstation serve` on a fixed port, so a restart keeps the fleet's URL."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        read_line(self.process, timeout=120)
        wait_for_http(f"{self.url}/api/health", timeout=120)

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM; seconds until the process exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started

    def metric(self, name: str, labels: str = "") -> float:
        """One sample of /metrics (0 when absent)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:  # noqa: S310
            text = response.read().decode()
        pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", re.M)
        found = pattern.search(text)
        return float(found.group(1)) if found else 0.0


def until(condition: Any, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one run, told in order
    args = parse_args(argv)
    if not wrk_available():
        progress("wrk is not installed (apt-get install wrk)")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="groundstation-capacity-"))
    database = workdir / "capacity.db"
    env = base_env(database)
    settings = load_settings(environ=env, dotenv=None)
    run = Run()
    try:
        cli(env, "migrate")
        session = asyncio.run(prepare_session(settings))
        probe = asyncio.run(prepare_fleet(settings, 1))[0]
        asyncio.run(prepare_installation(settings))  # what the fleet's config and events name
        started = time.monotonic()
        tokens = cli(env, "token", "create", "--scope", "global", "--count",
                     str(args.satellites)).split()
        run.numbers["token_create_seconds"] = round(time.monotonic() - started, 2)
        token_file = workdir / "tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        run.add(f"`token create --scope global --count {args.satellites:,}`",
                f"{run.numbers['token_create_seconds']:.1f} s", "seconds", None)
        measure_fleet(args, run, env, workdir, token_file, session, probe)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, run)
    return 0 if all(row.passed is not False for row in run.rows) else 1


def simulator(env: dict[str, str], url: str, satellites: int, duration: float,
              output: Path, *extra: str) -> subprocess.Popen[str]:
    """`groundstation simulate … --json` in the background; its summary goes to `output`."""
    command = [sys.executable, "-m", "app.cli", "simulate", "--url", url,
               "--satellites", str(satellites), "--duration", str(int(duration)), "--json",
               *extra]
    return subprocess.Popen(command, env=env, stdout=output.open("w"),
                            stderr=(output.with_suffix(".log")).open("w"), text=True)


def finished(process: subprocess.Popen[str], output: Path, timeout: float) -> dict[str, Any]:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    text = output.read_text()
    try:
        return dict(json.loads(text))
    except ValueError as error:
        log = output.with_suffix(".log").read_text()[-2000:]
        raise RuntimeError(f"the simulator printed no summary: {text[:500]!r}\n{log}") from error


def measure_bare(run: Run, bare_url: str) -> None:
    result = run_load("wrk", bare_url, [Target("/json")], duration=10, connections=50,
                      threads=1)
    run.numbers["bare_rps"] = round(result.requests_per_second)
    run.add("bare aiohttp JSON endpoint (yardstick)", f"{result.requests_per_second:,.0f} req/s",
            "", None)


def measure_fleet(args: argparse.Namespace, run: Run, env: dict[str, str], workdir: Path,
                  token_file: Path, session: str, probe: Any) -> None:
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "benchmarks.bare_server", "--port",
                             str(bare_port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    server = Server(env, free_port())
    try:
        wait_for_http(f"http://127.0.0.1:{bare_port}/json")
        server.start()
        measure_bare(run, f"http://127.0.0.1:{bare_port}")
        bare.terminate()

        # ---- bring-up and hold ------------------------------------------------------
        credentials = workdir / "credentials.txt"
        deliveries = workdir / "deliveries.txt"
        summary_file = workdir / "hold.json"
        n = args.satellites
        progress(f"bring-up: {n:,} satellites register from their tokens")
        started = time.monotonic()
        # Generous: the hold starts when the last satellite is online.
        sim = simulator(env, server.url, n, 600 + args.hold, summary_file,
                        "--token-file", str(token_file), "--credentials-out", str(credentials),
                        "--deliveries-out", str(deliveries))
        online = until(lambda: server.metric("groundstation_online_satellites") >= n
                       or sim.poll() is not None, timeout=600, interval=1.0)
        bring_up = time.monotonic() - started
        run.numbers["bring_up_seconds"] = round(bring_up, 1)
        run.add(f"bring-up: {n:,} satellites registered and online",
                f"{bring_up:.1f} s" if online else "not all online",
                "well under a minute", online and bring_up < 60)
        hold_started = time.monotonic()

        # ---- people during the hold -------------------------------------------------
        time.sleep(15)
        fanout = asyncio.run(people.subscriber_fanout(
            server.url, session, (probe.id, probe.api_key), subscribers=args.subscribers,
            probes=20, interval=1.0))
        run.numbers["fanout"] = people.as_dict(fanout)
        run.add(f"status/metrics change → {args.subscribers:,} subscribers (during the hold)",
                people.describe(fanout), "p99 ≤ 200 ms, all delivered",
                people.passed(fanout, BUDGETS["fanout_p99_ms"]))
        targets = simulated_ids(workdir / "capacity.db")
        returned, mutations = asyncio.run(people.enqueue_commands(
            server.url, session, targets, rate=args.commands_per_second,
            duration=args.people_seconds))
        run.numbers["enqueue_mutations"] = people.as_dict(mutations)
        run.add(f"enqueueCommand at {args.commands_per_second:g}/s (during the hold)",
                people.describe(mutations), "answered, none failed",
                mutations.errors == 0 and mutations.missing == 0)
        dashboard = asyncio.run(people.dashboard_latency(server.url, session, clients=20,
                                                         duration=20))
        run.numbers["dashboard_under_load"] = people.as_dict(dashboard)
        run.add(f"dashboard query, 20 clients, during the hold of {n:,} satellites",
                people.describe(dashboard), "none (the budget row follows)", None)
        remaining = args.hold - (time.monotonic() - hold_started)
        if remaining > 0:
            progress(f"holding the fleet {remaining:.0f} s more")
            time.sleep(remaining)
        held = time.monotonic() - hold_started
        sim.send_signal(signal.SIGINT)  # ends the run: the summary follows
        summary = finished(sim, summary_file, timeout=120)
        run.numbers["hold_summary"] = summary
        heartbeat = summary_route(summary, "heartbeat")
        errors = summary_errors(summary) + summary_unreachable(summary)
        dropped = server.metric("groundstation_heartbeat_history_dropped_total")
        run.add(f"{n:,} satellites held at the reference cadence for {held:.0f} s (SQLite)",
                f"{errors} errors or dropped connections, heartbeat p50 "
                f"{heartbeat['p50_ms']:.0f} ms / p99 "
                f"{heartbeat['p99_ms']:.0f} ms, {summary_rate(summary):,.0f} req/s, "
                f"{dropped:.0f} history rows dropped",
                "0 errors, heartbeat p99 ≤ 200 ms",
                errors == 0 and heartbeat["p99_ms"] <= BUDGETS["hold_heartbeat_p99_ms"]
                and dropped == 0)
        dashboard = asyncio.run(people.dashboard_latency(server.url, session, clients=20,
                                                         duration=20))
        run.numbers["dashboard"] = people.as_dict(dashboard)
        run.add(f"dashboard query, {n:,} satellites in the database, 20 clients",
                people.describe(dashboard), "p99 ≤ 100 ms",
                people.passed(dashboard, BUDGETS["dashboard_p99_ms"]))
        received = read_deliveries(deliveries)
        delivery = people.delivery_latencies(returned, received)
        run.numbers["delivery"] = people.as_dict(delivery)
        run.add(f"command delivery at {args.commands_per_second:g}/s under the fleet "
                "(enqueueCommand returned → long poll answered)", people.describe(delivery),
                "p50 ≤ 50 ms, p99 ≤ 250 ms, none lost",
                people.passed(delivery, BUDGETS["delivery_p99_ms"],
                              p50=BUDGETS["delivery_p50_ms"]))

        if not args.skip_restart:
            measure_restart(run, env, server, credentials, workdir, n)
    finally:
        bare.kill()
        if server.process is not None and server.process.poll() is None:
            server.stop()


def measure_restart(run: Run, env: dict[str, str], server: Server, credentials: Path,
                    workdir: Path, n: int) -> None:
    """SIGTERM with the fleet held, start again, time until every key was verified again."""
    output = workdir / "restart.json"
    sim = simulator(env, server.url, n, 600, output, "--credentials", str(credentials))
    until(lambda: server.metric("groundstation_held_polls") >= n * 0.9, timeout=300)
    held = server.metric("groundstation_held_polls")
    time.sleep(5)
    sigterm = time.monotonic()
    stop_seconds = server.stop()
    server.start()
    back = until(lambda: server.metric("groundstation_api_key_verifications_total",
                                       '{outcome="ok"}') >= n, timeout=300, interval=0.25)
    restart_seconds = time.monotonic() - sigterm
    time.sleep(35)  # a whole heartbeat interval after the restart
    sim.send_signal(signal.SIGINT)
    summary = finished(sim, output, timeout=120)
    errors = summary_errors(summary)
    unreachable = summary_unreachable(summary)
    run.numbers["restart"] = {"held_polls": held, "stop_seconds": round(stop_seconds, 2),
                              "restart_seconds": round(restart_seconds, 2), "summary": summary}
    run.add(f"SIGTERM with {held:,.0f} held polls → process exited", f"{stop_seconds:.1f} s",
            "within the shutdown timeout (10 s)", stop_seconds <= 10)
    run.add(f"restart with {n:,} satellites: SIGTERM → every satellite authenticated again",
            (f"{restart_seconds:.1f} s" if back else "not all back") + f", {errors} errors "
            f"({unreachable:,} requests found the server down and were retried)",
            "≤ 30 s, 0 errors", back and restart_seconds <= BUDGETS["restart_seconds"]
            and errors == 0)


def simulated_ids(database: Path) -> list[str]:
    """The simulated satellites' ids, read from the server's SQLite file."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT id FROM satellites WHERE name LIKE 'sim-%' AND status = 'active'"
        ).fetchall()
    return [str(row[0]) for row in rows]


def read_deliveries(path: Path) -> dict[str, float]:
    """`command_id monotonic_seconds` lines: when a simulated satellite's poll got it."""
    received: dict[str, float] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                received.setdefault(parts[0], float(parts[1]))
    return received


def summary_route(summary: dict[str, Any], route: str) -> dict[str, float]:
    """One route of the steady run (after every satellite came online)."""
    return dict(summary["routes"][route])


def summary_errors(summary: dict[str, Any]) -> int:
    """Errors the satellites saw, bring-up included (throttled answers are not errors)."""
    bring_up = summary.get("bring_up") or {}
    return int(summary["errors"]) + int(bring_up.get("errors", 0))


def summary_unreachable(summary: dict[str, Any]) -> int:
    """Refused or dropped connections (none may happen while the server runs)."""
    bring_up = summary.get("bring_up") or {}
    return int(summary["unreachable"]) + int(bring_up.get("unreachable", 0))


def summary_rate(summary: dict[str, Any]) -> float:
    return float(summary["requests_per_second"])


def report(args: argparse.Namespace, run: Run) -> None:
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / f"capacity-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({
        "at": datetime.now(UTC).isoformat(), "satellites": args.satellites, "hold": args.hold,
        "cpus": os.cpu_count(), "numbers": run.numbers,
        "rows": [row.__dict__ for row in run.rows],
    }, indent=2) + "\n", encoding="utf-8")
    progress(f"results written to {path}")
    print("| row | measured | budget | |")
    print("|---|---|---|---|")
    for row in run.rows:
        print(row.markdown())


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["BUDGETS", "main"]
