"""HTTP mode: each peer behind uvicorn on one CPU, loaded by ``wrk`` on the other.

Per app (the plain one, the session app, the middleware-stack app, the store app, the shop apps)
the runner starts one uvicorn process per peer that has that app (one worker, uvloop, httptools,
no access log, lifespan on), pinned to CPU 0, and one serving a null ASGI app (the ceiling,
loaded with every scenario's request like a peer: the server's own cost). Each server first
answers every spec case of its app over real HTTP (httpx), which also yields the session cookie
and the access token the timed requests carry; then a few hundred warm-up requests per scenario
and one untimed wrk run; then the timed ``wrk`` runs (pinned to CPU 1), interleaved: every
repetition runs each scenario once per server, the order rotating between repetitions. Only one
wrk runs at a time, so the idle servers cost nothing. Around each run the server's CPU time is
read from ``/proc``. A scenario may set its own number of wrk connections (``Case.connections``:
``shop_create``, one writer for SQLite).

Every figure is paired by repetition: the toolkit's req/s over a peer's, a peer's µs per
request above the null app's (``1e6 / rps - 1e6 / rps_null``), a run's p99 over its p50;
``benchmarks.stats`` gives the median of the paired values over the repetitions and its
bootstrap interval."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from . import stats
from .console import BenchmarkError, Progress
from .inprocess_runner import ROOT
from .peers import PEERS
from .spec import CASES, SCENARIOS, Case, captured
from .wrk import cpu_prefix, lua_script, run_wrk, wrk_version

# 64 connections everywhere: the latency target is stated at 64. Repetitions are what the
# bootstrap resamples (with n <= 5 of them, an interval is the range of the n paired values);
# longer runs steady each value. ``estimate_seconds`` says what a preset costs.
DEFAULT = {"repeat": 3, "seconds": 1, "connections": 64, "warmup_requests": 200}
QUICK = {"repeat": 2, "seconds": 1, "connections": 64, "warmup_requests": 50}
FULL = {"repeat": 5, "seconds": 5, "connections": 64, "warmup_requests": 1000}
# What the run costs beyond wrk's timed seconds, for ``estimate_seconds`` (measured, 2 vCPUs).
RUN_OVERHEAD_S = 0.05  # starting wrk, opening its connections, reading /proc
SERVER_S = 2.0  # per server: start, the HTTP check, one untimed 1 s wrk run
WARMUP_REQUEST_S = 0.001  # one httpx warm-up request
SERVER_CPU, LOAD_CPU = 0, 1
BASELINE = "toolkit"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Pseudo-peer: uvicorn serving a null ASGI app, loaded with each scenario's request. Its req/s
# is the ceiling any framework can reach on this server, machine and wrk setting.
CEILING, CEILING_APP = "ceiling", "benchmarks.inprocess:null_server_app"
# Every server's settings after its target and address (the scaling mode adds ``--workers``).
UVICORN_OPTIONS = (
    *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
    *("--lifespan", "on", "--log-level", "warning"),
)


def unavailable() -> str | None:
    """Why HTTP mode cannot run here, or None."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)"
    for module in ("uvloop", "httptools"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[bench]')"
    return None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time one process has used so far (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``uvicorn benchmarks.peers.<peer>:<app>`` in a subprocess, pinned to one CPU.

    Its temporary files (the shop's SQLite databases) go to ``tmpdir``, which the runner removes:
    uvicorn ends on SIGTERM by re-raising it, so the server's own ``atexit`` cleanup never runs.
    """

    def __init__(self, peer: str, app: str, cpu: int | None, tmpdir: str | None = None) -> None:
        self.peer = peer
        target = CEILING_APP if peer == CEILING else f"{PEERS[peer]}:{app}"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        command = [*cpu_prefix(cpu), *self.server_command(target)]
        self.command = command
        env = {**os.environ, "TMPDIR": tmpdir} if tmpdir is not None else None
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if cpu is not None and command[0] != "taskset" and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.process.pid, {cpu})

    @property
    def name(self) -> str:
        """The server as the progress line names it."""
        return self.peer

    def server_command(self, target: str) -> list[str]:
        """The command serving ``target`` on ``self.port`` (before any CPU pinning)."""
        address = ["--host", "127.0.0.1", "--port", str(self.port)]
        return [sys.executable, "-m", "uvicorn", target, *address, *UVICORN_OPTIONS]

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server has used so far (Linux), or None."""
        return process_cpu_seconds(self.process.pid)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().strip()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError(f"the {self.peer} server exited:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise BenchmarkError(f"the {self.peer} server did not start in {timeout:.0f} s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextlib.contextmanager
def serving(
    peers: list[str], app: str, cpu: int | None, tmpdir: str | None = None
) -> Iterator[dict[str, Server]]:
    servers: dict[str, Server] = {}
    try:
        for peer in peers:
            servers[peer] = Server(peer, app, cpu, tmpdir)
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _send(client: httpx.Client, case: Case) -> httpx.Response:
    client.cookies.clear()  # only the cookies a case names are sent
    headers = [(k, v) for k, v in case.headers if k.lower() not in ("host", "content-length")]
    return client.request(case.method, case.target, headers=headers, content=case.body or None)


def check_server(server: Server, cases: list[Case]) -> dict[str, dict[str, str]]:
    """Send every case once, in order, over HTTP; fail on any difference. Return, per case, the
    cookie and access token its response gave (``spec.captured``)."""
    kept: dict[str, dict[str, str]] = {}
    failures = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for case in cases:
            case = case.authenticated(kept)
            response = _send(client, case)
            headers = list(response.headers.multi_items())
            kept[case.name] = captured(headers, response.content)
            content_type = response.headers.get("content-type")
            for problem in case.problems(response.status_code, content_type, response.content, headers):
                failures.append(f"{server.name} / {case.name} ({case.method} {case.target}): {problem}")
    if failures:
        raise BenchmarkError(
            "over HTTP, peers do not answer as benchmarks/spec.py says:\n  " + "\n  ".join(failures)
        )
    return kept


def warm_up(server: Server, cases: list[Case], requests: int) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for case in cases:
            for _ in range(requests):
                response = _send(client, case)
                if response.status_code != case.status:
                    raise BenchmarkError(
                        f"{server.name} / {case.name}: {response.status_code} while warming up"
                    )


def _summary(peer: str, scenario: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [r["server_cpu_us"] for r in runs if r.get("server_cpu_us") is not None]
    return {
        "peer": peer,
        "scenario": scenario,
        "rps_median": statistics.median(r["rps"] for r in runs),
        "server_cpu_us_median": statistics.median(cpu) if cpu else None,
        "p50_ms_median": statistics.median(r["latency_us"]["p50"] for r in runs) / 1000,
        "p99_ms_median": statistics.median(r["latency_us"]["p99"] for r in runs) / 1000,
        "errors": sum(r["error_count"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "runs": runs,
    }


def _ratio_of_medians(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> float | None:
    denominator = statistics.median(b["rps"] for b in theirs)
    return statistics.median(a["rps"] for a in ours) / denominator if denominator else None


def paired(
    runs: dict[tuple[str, str], list[dict[str, Any]]], peers: list[str], scenarios: list[str]
) -> list[dict[str, Any]]:
    """Run by run (same repetition): the toolkit's req/s over each peer's, with the median and
    its bootstrap interval, and the same for each peer's server CPU per request over the
    toolkit's (``cpu``)."""
    if BASELINE not in peers:
        return []
    found = []
    for scenario in scenarios:
        ours = runs.get((BASELINE, scenario))
        for peer in peers:
            theirs = runs.get((peer, scenario))
            if peer == BASELINE or ours is None or theirs is None:  # a peer without the scenario
                continue
            pairs = list(zip(ours, theirs, strict=True))
            rps = stats.ratios([a["rps"] for a, _ in pairs], [b["rps"] for _, b in pairs])
            cpu = [
                b["server_cpu_us"] / a["server_cpu_us"]
                for a, b in pairs
                if a["server_cpu_us"] and b["server_cpu_us"]
            ]
            found.append(
                {
                    "scenario": scenario,
                    "peer": peer,
                    **(stats.interval(rps) or {"median": None, "low": None, "high": None, "n": 0}),
                    "of_medians": _ratio_of_medians(ours, theirs),
                    "cpu": stats.interval(cpu),
                }
            )
    return found


def above_null(
    runs: dict[tuple[str, str], list[dict[str, Any]]], peers: list[str], scenarios: list[str]
) -> list[dict[str, Any]]:
    """Each peer's µs per request above the null app under the same server, run by run
    (``1e6 / rps - 1e6 / rps_null``, same repetition), with the median and its interval."""
    found = []
    for scenario in scenarios:
        floor = runs.get((CEILING, scenario))
        for peer in peers:
            mine = runs.get((peer, scenario))
            if floor is None or mine is None:
                continue
            above = [
                stats.us_above(a["rps"], b["rps"])
                for a, b in zip(mine, floor, strict=True)
                if a["rps"] and b["rps"]
            ]
            if above:
                found.append({"scenario": scenario, "peer": peer, **(stats.interval(above) or {})})
    return found


def latency(
    runs: dict[tuple[str, str], list[dict[str, Any]]], peers: list[str], scenarios: list[str]
) -> list[dict[str, Any]]:
    """Each run's p99 latency over its p50, per peer and scenario: the median and its interval."""
    found = []
    for scenario in scenarios:
        for peer in peers:
            mine = runs.get((peer, scenario))
            if mine is None:
                continue
            spread = [r["latency_us"]["p99"] / r["latency_us"]["p50"] for r in mine if r["latency_us"]["p50"]]
            if spread:
                found.append({"scenario": scenario, "peer": peer, **(stats.interval(spread) or {})})
    return found


def estimate_seconds(settings: dict[str, Any], peers: int, apps: int, scenarios: int) -> float:
    """About how long HTTP mode takes for ``peers`` x ``scenarios`` in ``apps`` app groups (every
    peer serving every scenario: an upper bound), from the settings and the costs above."""
    cells = (peers + 1) * scenarios  # the null app is loaded with every scenario too
    timed = settings["repeat"] * cells * (settings["seconds"] + RUN_OVERHEAD_S)
    warm = cells * settings["warmup_requests"] * WARMUP_REQUEST_S
    return timed + warm + (peers + 1) * apps * SERVER_S


def prepare(
    server: Server, group: list[str], scripts: Path, warmup_requests: int, cases: list[Case] | None = None
) -> dict[str, Path]:
    """Check the server (every case of its app, or ``cases``), write one wrk script per scenario
    (with its cookie, token), warm it up."""
    app = SCENARIOS[group[0]].app
    kept = check_server(server, cases or [c for c in CASES if c.app == app and c.serves(server.peer)])
    paths, timed = {}, []
    for name in group:
        case = SCENARIOS[name].authenticated(kept)
        timed.append(case)
        paths[name] = scripts / f"{server.name.replace(' ', '-')}-{name}.lua"
        paths[name].write_text(lua_script(case), encoding="utf-8")
    warm_up(server, timed, warmup_requests)
    return paths


class Load:
    """Runs wrk against one server and scenario at a time, counting the runs for the progress line."""

    def __init__(
        self, settings: dict[str, Any], total: int, cpu: int | None, progress: Progress, mode: str = "HTTP"
    ) -> None:
        wrk = shutil.which("wrk")
        assert wrk is not None
        self.wrk, self.settings, self.total, self.cpu, self.progress = wrk, settings, total, cpu, progress
        self.mode, self.done = mode, 0

    def warm(self, server: Server, name: str, script: Path) -> None:
        result = self._wrk(server, name, script, seconds=1)
        if result["error_count"]:
            raise BenchmarkError(f"{server.name} / {name}: errors while warming up: {result['errors']}")

    def _wrk(self, server: Server, name: str, script: Path, seconds: int) -> dict[str, Any]:
        try:
            return run_wrk(
                self.wrk,
                server.url + SCENARIOS[name].target,
                script,
                seconds=seconds,
                connections=SCENARIOS[name].connections or self.settings["connections"],
                cpu=self.cpu,
            )
        except RuntimeError as exc:
            raise BenchmarkError(f"{server.name} / {name}: {exc}") from exc

    def __call__(self, server: Server, name: str, script: Path, repetition: int) -> dict[str, Any]:
        self.done += 1
        self.progress.update(
            f"{self.mode} {self.done}/{self.total}: {server.name} / {name},"
            f" repetition {repetition + 1}/{self.settings['repeat']}"
        )
        cpu_before = server.cpu_seconds()
        result = self._wrk(server, name, script, seconds=self.settings["seconds"])
        cpu_after = server.cpu_seconds()
        result["server_cpu_us"] = None
        if cpu_before is not None and cpu_after is not None and result["requests"]:
            result["server_cpu_us"] = (cpu_after - cpu_before) / result["requests"] * 1e6
        return result


def run(
    peers: list[str], scenarios: list[str], settings: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """The ``http`` section of the results (``skipped`` says why when it cannot run)."""
    reason = unavailable()
    if reason is not None:
        progress.done(f"HTTP mode skipped: {reason}; the other modes still run")
        return {"skipped": reason, "settings": settings}
    started = time.perf_counter()
    pin = (os.cpu_count() or 1) >= 2
    server_cpu, load_cpu = (SERVER_CPU, LOAD_CPU) if pin else (None, None)
    serving_peers = {s: [p for p in peers if SCENARIOS[s].serves(p)] for s in scenarios}
    total = (sum(len(names) + 1 for names in serving_peers.values())) * settings["repeat"]
    load = Load(settings, total, load_cpu, progress)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    # wrk's scripts, and the servers' temporary files
    with tempfile.TemporaryDirectory(prefix="benchmarks-wrk-") as scripts:
        for app in dict.fromkeys(SCENARIOS[s].app for s in scenarios):
            group = [s for s in scenarios if SCENARIOS[s].app == app]
            present = [p for p in peers if any(p in serving_peers[s] for s in group)]
            if not present:  # none of the chosen peers has this app
                continue
            names = [*present, CEILING]
            progress.update(f"HTTP: starting uvicorn for {', '.join(names)} ({app})")
            with serving(names, app, server_cpu, scripts) as servers:
                paths = {}
                for peer in present:
                    progress.update(f"HTTP: checking {peer} ({app}) over HTTP, warming it up")
                    mine = [s for s in group if peer in serving_peers[s]]
                    paths[peer] = prepare(servers[peer], mine, Path(scripts), settings["warmup_requests"])
                # The null app answers anything (200, a short text): nothing to check; it gets
                # each scenario's request (with a serving peer's cookie or token, ignored).
                paths[CEILING] = {}
                for peer in present:
                    paths[CEILING] = {**paths[peer], **paths[CEILING]}
                for peer in names:  # one untimed wrk run each: many connections at once, as timed
                    progress.update(f"HTTP: warming {peer} ({app}) up under wrk")
                    name, script = next(iter(paths[peer].items()))
                    load.warm(servers[peer], name, script)
                for index in range(settings["repeat"]):
                    shift = index % len(names)
                    for name in group:
                        for peer in names[shift:] + names[:shift]:
                            if name in paths[peer]:
                                measured = load(servers[peer], name, paths[peer][name], index)
                                runs.setdefault((peer, name), []).append(measured)
    progress.update("HTTP: bootstrap intervals")
    results = [_summary(p, s, runs[(p, s)]) for s in scenarios for p in peers if (p, s) in runs]
    errors = sum(r["errors"] for r in results)
    progress.done(f"HTTP done: every peer checked over HTTP; {errors} wrk error(s)")
    return {
        "settings": {
            **settings,
            "server_cpu": server_cpu,
            "load_cpu": load_cpu,
            "wrk_threads": 1,
            "scenario_connections": {s: c for s in scenarios if (c := SCENARIOS[s].connections)},
        },
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "wrk": wrk_version(load.wrk),
        "server": "uvicorn --loop uvloop --http httptools --no-access-log --lifespan on (1 worker)",
        "statistics": {
            "paired": "wrk runs of the same repetition",
            "interval": f"{stats.LEVEL:.0%} percentile bootstrap of the median of the paired values",
            "rounds": stats.ROUNDS,
            "seed": stats.SEED,
        },
        "results": results,
        "null_app": [_summary(CEILING, s, runs[(CEILING, s)]) for s in scenarios if (CEILING, s) in runs],
        "ratios": paired(runs, peers, scenarios),
        "above_null": above_null(runs, peers, scenarios),
        "latency": latency(runs, peers, scenarios),
    }
